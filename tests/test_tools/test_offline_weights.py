"""Pretrained weights by URL: a failed download stops with one message; a reachable one loads.

Loopback only: a port nothing listens on stands for an offline compute node,
an http.server thread on 127.0.0.1 for the weights host; TORCH_HOME (the hub
folder) and MMENGINE_HOME (its open_mmlab.json maps ``open-mmlab://`` names to
URLs) point into the test's folder.
"""
import io
import json
import os.path as osp
import subprocess
import sys
import urllib.error

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ael_mmseg.utils.weights_download import (WeightsDownloadError, cached_weights_path,
                                              weights_cache_dir)
from helpers.loopback_http import refused_port, serve_files
from helpers.stock_tools import STOCK_TOOLS, TOY_CONFIG, stock_tool_env, tiny_toy_options

FILE_NAME = 'resnet18_v1c-b5776b93.pth'


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """TORCH_HOME and MMENGINE_HOME in tmp_path; loopback never through a proxy."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    # torch.hub.set_dir() would win over TORCH_HOME.
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    return tmp_path


def _open_mmlab_json(env_dir, mapping):
    home = env_dir / 'mmengine'
    home.mkdir(exist_ok=True)
    (home / 'open_mmlab.json').write_text(json.dumps(mapping))


def _state_dict_bytes():
    state = {'conv.weight': torch.arange(12.0).reshape(2, 2, 3), 'conv.bias': torch.ones(2)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return state, buffer.getvalue()


def _assert_names_everything(message, weights, url):
    path = osp.join(str(weights_cache_dir()), FILE_NAME)
    assert message.startswith(f'Could not download the pretrained weights {weights}')
    assert url in message
    assert path in message and f'file name {FILE_NAME} in the folder {weights_cache_dir()}' \
        in message
    assert 'torch.hub.get_dir()/checkpoints' in message
    assert 'python tools/misc/prefetch_weights.py CONFIG' in message
    assert 'model.segmentor.pretrained' in message and 'model.pretrained' in message
    assert "init_cfg=dict(type='Pretrained', checkpoint=...)" in message


def test_refused_url_raises_one_error_naming_file_folder_and_config_keys(offline_env):
    url = f'http://127.0.0.1:{refused_port()}/pretrain/{FILE_NAME}'
    with pytest.raises(WeightsDownloadError) as info:
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    error = info.value
    assert isinstance(error, urllib.error.URLError)  # what the stock loader raises
    assert error.__suppress_context__  # the message replaces the stock traceback
    assert (error.weights, error.url) == (url, url)
    assert error.path == cached_weights_path(url) == osp.join(weights_cache_dir(), FILE_NAME)
    assert weights_cache_dir() == str(offline_env / 'torch' / 'hub' / 'checkpoints')
    message = str(error)
    _assert_names_everything(message, url, url)
    assert 'Connection refused' in message
    print(message)


def test_open_mmlab_name_is_named_with_the_url_it_maps_to(offline_env):
    url = f'http://127.0.0.1:{refused_port()}/pretrain/third_party/{FILE_NAME}'
    _open_mmlab_json(offline_env, {'resnet18_v1c': url})
    with pytest.raises(WeightsDownloadError) as info:
        CheckpointLoader.load_checkpoint('open-mmlab://resnet18_v1c', map_location='cpu')
    message = str(info.value)
    _assert_names_everything(message, f'open-mmlab://resnet18_v1c ({url})', url)
    assert 'instead of open-mmlab://resnet18_v1c' in message


def test_http_error_keeps_its_status(offline_env):
    with serve_files({}) as server:
        url = server.url(f'/{FILE_NAME}')
        with pytest.raises(WeightsDownloadError, match='HTTP Error 404'):
            CheckpointLoader.load_checkpoint(url, map_location='cpu')


def test_backbone_init_weights_raises_it(offline_env):
    """The path training takes: a backbone's Pretrained init_cfg, built by mmseg."""
    from mmseg.models.backbones import ResNetV1c
    url = f'http://127.0.0.1:{refused_port()}/{FILE_NAME}'
    backbone = ResNetV1c(depth=18, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(WeightsDownloadError, match='Connection refused'):
        backbone.init_weights()


def test_reachable_server_loads_through_the_wrapper_and_caches(offline_env):
    state, body = _state_dict_bytes()
    with serve_files({f'/third_party/{FILE_NAME}': body}) as server:
        url = server.url(f'/third_party/{FILE_NAME}')
        _open_mmlab_json(offline_env, {'resnet18_v1c': url})
        assert hasattr(CheckpointLoader._get_checkpoint_loader(url), 'ael_mmseg_stock_loader')
        for weights in (url, 'open-mmlab://resnet18_v1c'):
            loader = CheckpointLoader._get_checkpoint_loader(weights)
            assert hasattr(loader, 'ael_mmseg_stock_loader'), weights
            loaded = CheckpointLoader.load_checkpoint(weights, map_location='cpu')
            assert set(loaded) == set(state)
            assert all(torch.equal(loaded[k], state[k]) for k in state)
        # Downloaded once, to the file the message names; the second load read it.
        assert server.requests == [f'/third_party/{FILE_NAME}']
        assert osp.isfile(cached_weights_path(url))


def test_stock_train_offline_ends_with_the_message(offline_env, toy_root):
    """Through mmseg's stock train.py: the run stops at weight init with the message, last."""
    url = f'http://127.0.0.1:{refused_port()}/{FILE_NAME}'
    env = stock_tool_env()
    proc = subprocess.run(
        [sys.executable, osp.join(STOCK_TOOLS, 'train.py'), TOY_CONFIG,
         '--work-dir', str(offline_env / 'work'), '--cfg-options',
         *tiny_toy_options(toy_root), f'model.segmentor.pretrained={url}'],
        cwd=str(offline_env), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600)
    output = proc.stdout
    assert proc.returncode != 0, output[-3000:]
    tail = output[output.rindex('Traceback (most recent call last)'):]
    assert 'During handling of the above exception' not in tail, tail
    last_error = tail[tail.index('WeightsDownloadError: '):]
    assert last_error.startswith(f'WeightsDownloadError: Could not download the pretrained '
                                 f'weights {url}: [Errno 111] Connection refused.'), tail
    path = osp.join(str(offline_env / 'torch' / 'hub' / 'checkpoints'), FILE_NAME)
    assert path in last_error and 'model.segmentor.pretrained' in last_error
