"""tools/misc/prefetch_weights.py: configs' weights into the cache mmengine reads.

The weights host is an http.server thread on 127.0.0.1; MMENGINE_HOME's
open_mmlab.json maps ``open-mmlab://`` names to it (mmengine reads that file
over its own table), TORCH_HOME puts the cache in the test's folder.
"""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ael_mmseg.utils.weights_download import cached_weights_path, weights_in_config
from helpers.loopback_http import refused_port, serve_files
from helpers.stock_tools import REPO_ROOT

TOOL = osp.join(REPO_ROOT, 'tools', 'misc', 'prefetch_weights.py')
R50 = 'resnet50_v1c-2cccc1ad.pth'
R101_URL = 'https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth'


def _tool():
    spec = importlib.util.spec_from_file_location('prefetch_weights', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    (tmp_path / 'mmengine').mkdir()
    return tmp_path


def _run(args, cwd):
    """The tool as a user runs it: its own interpreter, the repo importable."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    return subprocess.run([sys.executable, TOOL, *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_downloads_each_url_once_then_reports_cached_local_and_failures(env):
    body = b'stand-in weights'
    with serve_files({f'/third_party/{R50}': body, '/extra/head-0123abcd.pth': b'head'}) as server:
        (env / 'mmengine' / 'open_mmlab.json').write_text(
            json.dumps({'resnet50_v1c': server.url(f'/third_party/{R50}')}))
        local = env / 'local_weights.pth'
        local.write_bytes(b'x')
        base = _write(env / 'base.py',
                      "model = dict(segmentor=dict(pretrained='open-mmlab://resnet50_v1c'))\n")
        child = _write(env / 'child.py', "_base_ = ['./base.py']\n"
                       f"model = dict(head=dict(init_cfg=dict(type='Pretrained', checkpoint="
                       f"'{server.url('/extra/head-0123abcd.pth')}')))\n"
                       "default_hooks = dict(checkpoint=dict(interval=5))\n")
        local_cfg = _write(env / 'local.py',
                           f"model = dict(segmentor=dict(pretrained='{local}'))\n")
        proc = _run([base, child, local_cfg], cwd=str(env))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert '3 configs, 3 distinct weights' in out
        r50_file = osp.join(str(env / 'torch' / 'hub' / 'checkpoints'), R50)
        rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
        assert rows['open-mmlab://resnet50_v1c'] == [
            'open-mmlab://resnet50_v1c', server.url(f'/third_party/{R50}'), r50_file,
            'downloaded', '2']
        assert rows[server.url('/extra/head-0123abcd.pth')][3] == 'downloaded'
        assert rows[str(local)][1:] == ['-', str(local), 'local', '1']
        assert open(r50_file, 'rb').read() == body
        # Once per URL although two configs name it; a second run fetches nothing.
        assert sorted(server.requests) == ['/extra/head-0123abcd.pth', f'/third_party/{R50}']
        again = _run([base, child, '--check'], cwd=str(env))
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count(' cached ') == 2 and len(server.requests) == 2


def test_the_file_is_the_one_mmengine_then_loads_offline(env):
    """What the tool wrote is what CheckpointLoader reads, with the host gone."""
    state = {'w': torch.arange(4.0)}
    path = env / 'w.pth'
    torch.save(state, str(path))
    with serve_files({f'/third_party/{R50}': path.read_bytes()}) as server:
        url = server.url(f'/third_party/{R50}')
        (env / 'mmengine' / 'open_mmlab.json').write_text(json.dumps({'resnet50_v1c': url}))
        config = _write(env / 'c.py',
                        "model = dict(segmentor=dict(pretrained='open-mmlab://resnet50_v1c'))\n")
        assert _tool().main([config]) == 0
    # Server shut down: a download would be refused.
    loaded = CheckpointLoader.load_checkpoint('open-mmlab://resnet50_v1c', map_location='cpu')
    assert torch.equal(loaded['w'], state['w'])
    assert cached_weights_path(url) == osp.join(str(env / 'torch' / 'hub' / 'checkpoints'), R50)


def test_exits_nonzero_naming_what_failed(env, capsys):
    dead = f'http://127.0.0.1:{refused_port()}/gone-1234abcd.pth'
    config = _write(env / 'c.py', f"model = dict(segmentor=dict(pretrained='{dead}'))\n")
    unknown = _write(env / 'u.py',
                     "model = dict(segmentor=dict(pretrained='open-mmlab://no_such_net'))\n")
    broken = _write(env / 'b.py', "_base_ = ['./does_not_exist.py']\n")
    assert _tool().main([config, unknown, broken]) == 1
    captured = capsys.readouterr()
    assert '3 failed:' in captured.err
    assert f'{dead} ({dead}): failed: URLError' in captured.err
    assert 'Connection refused' in captured.err
    assert "open-mmlab://no_such_net (?): failed: mmengine cannot resolve it (KeyError" \
        in captured.err
    assert f'{broken}: cannot read the config' in captured.err


def test_check_reports_missing_without_downloading(env, capsys):
    with serve_files({f'/{R50}': b'x'}) as server:
        config = _write(env / 'c.py',
                        f"model = dict(segmentor=dict(pretrained='{server.url('/' + R50)}'))\n")
        assert _tool().main([config, '--check']) == 1
        assert server.requests == []
    assert f'{server.url("/" + R50)}' in capsys.readouterr().err


def test_paper_configs_resolve_to_the_imagenet_checkpoints(env, capsys):
    """Every shipped config through its _base_ chain, with --check (nothing is fetched)."""
    configs = osp.join(REPO_ROOT, 'configs')
    assert not any('/_base_/' in f for f in _tool().expand_configs([configs]))
    assert _tool().main([configs, '--check']) == 1  # nothing is cached in this TORCH_HOME
    captured = capsys.readouterr()
    assert 'cannot read the config' not in captured.err
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[2:]}
    r101_file = osp.join(str(env / 'torch' / 'hub' / 'checkpoints'), osp.basename(R101_URL))
    # 10 AEL, 10 CutMix mean-teacher, 10 supervised, 8 ablation configs.
    assert rows['open-mmlab://resnet101_v1c'] == ['open-mmlab://resnet101_v1c', R101_URL,
                                                  r101_file, 'missing', '38']
    assert rows['open-mmlab://resnet50_v1c'][3:] == ['missing', '1']  # own-data template
    # The original-network configs: the converted deep-stem checkpoint, a local path.
    assert rows['checkpoints/resnet101-2a57e44d_mmseg.pth'][3:] == ['local,', 'missing', '10']
    assert len(rows) == 3


def test_weights_in_config_keys():
    cfg = dict(model=dict(segmentor=dict(pretrained='a', backbone=dict(pretrained=None)),
                          teacher=[dict(init_cfg=dict(type='Pretrained', checkpoint='b'))],
                          init_cfg=dict(type='Kaiming')),
               segmentor=dict(pretrained='helper variable of a base, not the model'),
               default_hooks=dict(checkpoint=dict(interval=1)), load_from='c')
    assert weights_in_config(cfg) == [('model.segmentor.pretrained', 'a'),
                                      ('model.teacher.0.init_cfg.checkpoint', 'b'),
                                      ('load_from', 'c')]
