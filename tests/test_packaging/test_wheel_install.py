"""The wheel, installed non-editable in a fresh virtual environment, trains an ael_mmseg:: config.

What a user of a released wheel does, from a folder outside the repository:

1. the working tree's files (``git ls-files``) are copied to a temporary
   folder (nothing is written into the checkout) and the wheel is built from
   it with ``pip wheel --no-deps``, in pip's build isolation (setuptools as
   pyproject.toml's build-system asks; the GPU stack's own setuptools 56
   predates pyproject metadata);
2. a fresh virtual environment gets it with ``pip install`` (non-editable) and
   its dependencies, on this environment's stack: the same torch, numpy,
   mmengine and mmsegmentation versions (torch 2.13.0 from the machine's local
   wheel for the CPU stack, 2.1.2 for the GPU stack), and mmcv 2.1.0 as the
   wheel tools/setup_env.sh built into this stack's pip cache
   (``~/.cache/ael_mmseg/pip-cpu`` or ``pip-gpu``, chosen by the running
   torch); the test is skipped if that wheel is not there (building mmcv takes
   ~15 min: run tools/setup_env.sh first);
3. the toy data are written by the wheel's own
   ``ael_mmseg/.mim/tools/misc/generate_longtail_toy.py``;
4. a user config ``_base_ = ['ael_mmseg::ael/<toy config>.py']``, shrunk to 4
   iterations (warm-up 0, so that the AEL losses run too), is trained by
   mmseg's stock ``mmseg/.mim/tools/train.py`` of the fresh environment.

Asserted: the run ends with a checkpoint, a validation and a log with both
branches' losses; ael_mmseg was imported from the fresh environment's
site-packages (installed without bytecode, the run wrote it), never from the
checkout (not on any path there).

Wall time, CPU stack, 2 CPU cores shared with other jobs (load ~5), pip's
caches warm, measured 2026-12-02: 69 s (wheel 2 s, venv + install
31 s, toy data 13 s, training 19 s); each step's time is printed
(``pytest -s``). GPU stack (Python 3.8, torch 2.1.2 with its CUDA
libraries, ~5 GB installed, from pip's cache): 93 s, 68 s of it the install. The training step fails
after 600 s if the run does not exit (e.g. data-loader workers that outlive
it); the whole process group is killed then.
"""
import glob
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import mmengine
import mmseg
import numpy
import pytest
import torch

from helpers.stock_tools import REPO_ROOT

TOY = 'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py'
GPU_STACK_TORCH = '2.1.2'
CHECKOUT_ONLY_TOOLS = ('setup_env.sh', 'run_tests.sh', 'run_demo.sh')


def _stack():
    """(stack name, pins of the running stack, this stack's mmcv wheel cache)."""
    torch_version = torch.__version__.split('+')[0]
    stack = 'gpu' if torch_version == GPU_STACK_TORCH else 'cpu'
    cache_home = os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache'))
    pins = [f'torch=={torch_version}', f'numpy=={numpy.__version__}',
            f'mmengine=={mmengine.__version__}', f'mmsegmentation=={mmseg.__version__}']
    return stack, pins, osp.join(cache_home, 'ael_mmseg', f'pip-{stack}')


def _mmcv_wheel(cache):
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    wheels = sorted(glob.glob(osp.join(cache, 'wheels', '**', f'mmcv-2.1.0-{tag}-*.whl'),
                              recursive=True), key=osp.getmtime)
    return wheels[-1] if wheels else None


def _run(cmd, cwd, env=None, timeout=900):
    """Run ``cmd`` in its own process group; on timeout kill the group (data-loader workers too)."""
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f'{" ".join(map(str, cmd))} did not exit within {timeout} s\n'
                             f'{output[-6000:]}')
    assert proc.returncode == 0, f'{" ".join(map(str, cmd))} exited {proc.returncode}\n' \
                                 f'{output[-6000:]}'
    return output, time.time() - start


def _clean_env(venv):
    """A user's shell in the fresh environment: no PYTHONPATH, no user site, bytecode written."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONDONTWRITEBYTECODE', 'VIRTUAL_ENV')}
    env.update(PYTHONNOUSERSITE='1', VIRTUAL_ENV=str(venv), OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1', PATH=os.pathsep.join([osp.join(str(venv), 'bin'),
                                                          env.get('PATH', '')]))
    return env


def _copy_working_tree(dst):
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO_ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.decode().split('\0')
    for name in filter(None, files):
        src = osp.join(REPO_ROOT, name)
        if osp.isfile(src) and not osp.islink(src):
            os.makedirs(osp.dirname(osp.join(dst, name)), exist_ok=True)
            shutil.copy2(src, osp.join(dst, name))


def _check_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mim = 'ael_mmseg/.mim/'
    for required in (f'{mim}model-index.yml', f'{mim}configs/ael/{TOY}',
                     f'{mim}configs/_base_/datasets/semi_longtail_toy_64x64.py',
                     f'{mim}configs/ael/metafile.yaml', f'{mim}tools/train.py',
                     f'{mim}tools/misc/prefetch_weights.py',
                     f'{mim}tools/misc/generate_longtail_toy.py',
                     f'{mim}tools/model_converters/export_teacher.py',
                     f'{mim}tools/dataset_converters/make_semi_splits.py',
                     f'{mim}tools/analysis_tools/ael_report.py',
                     'ael_mmseg_mim.pth', '_ael_mmseg_mim.py', 'ael_mmseg/registry.py'):
        assert required in names, required
    assert not [n for n in names if '__pycache__' in n or n.endswith('.pyc')]
    assert not [n for n in names if n.startswith(f'{mim}tools/') and
                osp.basename(n) in CHECKOUT_ONLY_TOOLS]
    assert not [n for n in names if n.startswith(('tests/', 'configs/', 'tools/', 'docs/'))]


def test_wheel_in_fresh_venv_trains_a_prefixed_user_config(tmp_path):
    stack, pins, cache = _stack()
    mmcv_wheel = _mmcv_wheel(cache)
    if mmcv_wheel is None:
        pytest.skip(f'no mmcv 2.1.0 wheel for this Python in {cache}: '
                    f'AEL_STACK={stack} bash tools/setup_env.sh builds it (~15 min)')
    times = {}

    src, dist = tmp_path / 'src', tmp_path / 'dist'
    _copy_working_tree(str(src))
    _, times['build wheel'] = _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q',
                                    '-w', str(dist), str(src)], cwd=str(tmp_path))
    wheel, = glob.glob(str(dist / 'ael_mmseg-*.whl'))
    _check_wheel_contents(wheel)

    venv = tmp_path / 'venv'
    python = str(venv / 'bin' / 'python')
    env = _clean_env(venv)
    start = time.time()
    # The running pip installs into the new environment (--python), which saves
    # ensurepip; --no-compile leaves bytecode to be written by what imports it.
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], cwd=str(tmp_path))
    log, _ = _run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-compile',
                   *pins, mmcv_wheel, wheel], cwd=str(tmp_path), env=env, timeout=1800)
    times['venv + install'] = time.time() - start

    site_packages, _ = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()'
                             "['purelib'])"], cwd=str(tmp_path), env=env)
    site_packages = site_packages.strip()
    installed = osp.join(site_packages, 'ael_mmseg')
    assert osp.isfile(osp.join(installed, '.mim', 'configs', 'ael', TOY))
    assert not osp.islink(osp.join(installed, '.mim', 'configs'))  # copies, not links
    assert not glob.glob(osp.join(installed, '**', '*.pyc'), recursive=True)
    assert not glob.glob(osp.join(site_packages, '__editable__*'))

    user = tmp_path / 'user_project'
    user.mkdir()
    generator = osp.join(installed, '.mim', 'tools', 'misc', 'generate_longtail_toy.py')
    _, times['toy data'] = _run([python, generator, '--out', 'data/longtail_toy',
                                 '--num-labeled', '4', '--num-unlabeled', '8', '--num-val', '2',
                                 '--size', '64'], cwd=str(user), env=env)
    (user / 'my_config.py').write_text(
        f"_base_ = ['ael_mmseg::ael/{TOY}']\n"
        "data_root = 'data/longtail_toy'\n"
        "train_dataloader = dict(dataset=dict(labeled=dict(data_root=data_root),\n"
        "                                     unlabeled=dict(data_root=data_root)))\n"
        "val_dataloader = dict(dataset=dict(data_root=data_root))\n"
        "test_dataloader = val_dataloader\n"
        "train_cfg = dict(max_iters=4, val_interval=4)\n"
        "model = dict(semi_train_cfg=dict(warmup_iters=0, rampup_iters=0))\n"
        "default_hooks = dict(logger=dict(interval=1))\n")

    stock_train = osp.join(site_packages, 'mmseg', '.mim', 'tools', 'train.py')
    out, times['train'] = _run([python, stock_train, 'my_config.py', '--work-dir', 'work'],
                               cwd=str(user), env=env, timeout=600)
    print('\nwheel install test (%s stack): %s' % (
        stack, ', '.join(f'{k} {v:.0f} s' for k, v in times.items())))

    work = user / 'work'
    assert (work / 'iter_4.pth').is_file()
    logs = glob.glob(str(work / '*' / '*.log'))
    assert logs
    text = open(logs[0]).read()
    assert 'Iter(train) [4/4]' in text and 'unsup.loss_ael' in text
    assert 'Iter(val) [' in text and 'teacher/mIoU' in text
    assert "_scope_='ael_mmseg'" in text  # the config came through the prefix
    # ael_mmseg ran from the fresh environment: the run compiled its modules there.
    assert osp.isfile(osp.join(installed, '__pycache__',
                               f'__init__.{sys.implementation.cache_tag}.pyc'))
    assert glob.glob(osp.join(installed, 'models', '**', '*.pyc'), recursive=True)
    where, _ = _run([python, '-c', 'import ael_mmseg, sys; print(ael_mmseg.__file__); '
                     'print(any(p.startswith(%r) for p in sys.path))' % REPO_ROOT],
                    cwd=str(user), env=env)
    assert where.split() == [osp.join(installed, '__init__.py'), 'False']
    assert REPO_ROOT not in out
