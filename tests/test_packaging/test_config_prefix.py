"""``ael_mmseg::`` config paths in this environment (the repo's editable install).

The non-editable wheel is tested end to end in test_wheel_install.py.
"""
import logging
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest
from mmengine.config import Config

import ael_mmseg
from helpers.stock_tools import REPO_ROOT

TOY = 'ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py'
PACKAGE_DIR = osp.dirname(ael_mmseg.__file__)


def _user_config(tmp_path, base=f'ael_mmseg::ael/{TOY}'):
    path = tmp_path / 'user_config.py'
    path.write_text(f"_base_ = ['{base}']\ntrain_cfg = dict(max_iters=4)\n")
    return str(path)


@pytest.fixture(scope='module', autouse=True)
def installed_with_the_hook():
    pth = osp.join(sysconfig.get_paths()['purelib'], 'ael_mmseg_mim.pth')
    if not osp.isfile(pth):
        pytest.fail(f'{pth} is missing: this environment installed ael_mmseg before setup.py '
                    'shipped the hook; reinstall it (pip install -e .)')


def test_editable_install_links_the_mim_items_to_the_checkout():
    for item in ('configs', 'tools', 'model-index.yml'):
        link = osp.join(PACKAGE_DIR, '.mim', item)
        assert osp.islink(link), link
        assert osp.realpath(link) == osp.realpath(osp.join(REPO_ROOT, item))


def test_mmengine_knows_the_prefix_and_finds_the_package():
    from mmengine.config import config as config_module
    from mmengine.config.utils import MODULE2PACKAGE
    assert MODULE2PACKAGE['ael_mmseg'] == 'ael_mmseg'
    assert config_module.get_installed_path('ael_mmseg') == PACKAGE_DIR
    assert config_module.get_installed_path('mmsegmentation').endswith('mmseg')  # unchanged


def test_user_config_outside_the_repo_inherits_a_shipped_config(tmp_path):
    cfg = Config.fromfile(_user_config(tmp_path))
    shipped = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'ael', TOY))
    # The shipped config's whole _base_ chain (its relative bases and mmseg::) came along.
    assert cfg.train_cfg.max_iters == 4
    assert cfg.model.type == 'AELSegmentor' == shipped.model.type
    assert cfg.model.segmentor.backbone.depth == 18
    assert cfg.train_dataloader.dataset.type == 'SemiSegDataset'
    assert cfg.default_scope == 'mmseg' and cfg.custom_imports.imports == ['ael_mmseg']
    # mmengine scopes every dict of a prefixed base; ael_mmseg.registry serves that scope.
    assert cfg.model._scope_ == 'ael_mmseg'
    for key in ('model', 'train_dataloader', 'param_scheduler', 'custom_hooks'):
        assert _without_scope(cfg[key]) == _without_scope(shipped[key]), key


def _without_scope(node):
    if isinstance(node, dict):
        return {k: _without_scope(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_without_scope(v) for v in node]
    return node


# One config of each family and base chain (each look-up through the prefix
# reloads pkg_resources in mmengine: ~0.5 s a config).
PREFIXED = ('ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py',
            'ael/ael_original-deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_8-513x513.py',
            'ael/ael_deeplabv3plus_r50-d8_4xb2-20k_custom-512x512.py',
            'ael/ael_unet-s4-d8_fcn_1xb4-1600_longtail-toy-64x64.py',
            'ael_baselines/supervised_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_2-513x513.py',
            'ael_ablations/cutmix-mt+acp_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_16-769x769.py')


@pytest.mark.parametrize('name', PREFIXED)
def test_shipped_configs_of_each_family_resolve_through_the_prefix(tmp_path, name):
    cfg = Config.fromfile(_user_config(tmp_path, f'ael_mmseg::{name}'))
    shipped = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    assert cfg.model._scope_ == 'ael_mmseg'
    assert _without_scope(cfg.model) == _without_scope(shipped.model)
    assert _without_scope(cfg.train_dataloader) == _without_scope(shipped.train_dataloader)


def test_scoped_model_and_hooks_build_from_the_mmseg_registries(tmp_path):
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmseg.registry import HOOKS, MODELS
    cfg = Config.fromfile(_user_config(tmp_path))
    init_default_scope('mmseg')
    messages = []

    class Collect(logging.Handler):  # mmengine's registry warnings go to its logger
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Collect()
    logger.addHandler(handler)
    try:
        model = MODELS.build(cfg.model)
        hooks = [HOOKS.build(hook) for hook in cfg.custom_hooks]
    finally:
        logger.removeHandler(handler)
    assert type(model).__name__ == 'AELSegmentor'
    assert [type(h).__name__ for h in hooks] == [h.type for h in cfg.custom_hooks]
    assert messages == []


def _run_without_site(script, cwd):
    """``python -S``: no .pth file runs; the checkout and site-packages are on PYTHONPATH."""
    site_packages = sysconfig.get_paths()['purelib']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, site_packages]))
    return subprocess.run([sys.executable, '-S', '-c', script], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)


def test_without_the_hook_mmengine_refuses_the_prefix(tmp_path):
    script = ('from mmengine.config import Config\n'
              f'Config.fromfile({_user_config(tmp_path)!r}, import_custom_modules=False)\n')
    proc = _run_without_site(script, str(tmp_path))
    assert proc.returncode != 0
    assert 'mmengine does not support to load ael_mmseg config' in proc.stdout, proc.stdout


def test_hook_patches_mmengine_when_it_is_imported_after_install(tmp_path):
    script = ('import _ael_mmseg_mim\n'
              '_ael_mmseg_mim.install()\n'
              'from mmengine.config import Config\n'
              f'cfg = Config.fromfile({_user_config(tmp_path)!r}, import_custom_modules=False)\n'
              "assert cfg.model.type == 'AELSegmentor'\n"
              'import mmengine.config.config as c\n'
              "print(c.get_installed_path('ael_mmseg'))\n")
    proc = _run_without_site(script, str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == PACKAGE_DIR
