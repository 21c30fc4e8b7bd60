"""Lets mmengine resolve ``ael_mmseg::`` config paths, as it does ``mmseg::``.

A user config outside this repository inherits a shipped config with::

    _base_ = ['ael_mmseg::ael/ael_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py']

mmengine 0.10 (``mmengine/config/config.py``, ``Config._get_cfg_path``) accepts
the ``pkg::`` prefix only for the packages in
``mmengine.config.utils.MODULE2PACKAGE``, a fixed table of OpenMMLab projects,
and finds the package with ``mmengine.utils.get_installed_path``, which goes
through ``pkg_resources`` and, for an editable (PEP 660) install, returns
``site-packages/ael_mmseg``, a folder that does not exist. Both happen while
the user config is parsed, before its ``custom_imports`` import ael_mmseg, so
the package itself cannot fix them.

``ael_mmseg_mim.pth`` (installed into site-packages with the package, see
setup.py) calls :func:`install` at interpreter start-up. That imports nothing
but ``importlib``: it puts a finder in front of ``sys.meta_path`` that, once
``mmengine.config.config`` has been executed,

1. adds ``'ael_mmseg': 'ael_mmseg'`` to ``MODULE2PACKAGE``, and
2. replaces that module's ``get_installed_path`` by one that answers
   ``'ael_mmseg'`` with the folder of the package Python would import (found
   with ``importlib.util.find_spec``, which does not import it) and every
   other package as before. mmengine then reads ``<that folder>/.mim``.

The shipped configs' types are looked up under the scope ``ael_mmseg``
(mmengine gives every dict of an ``ael_mmseg::`` base ``_scope_='ael_mmseg'``);
``ael_mmseg/registry.py`` provides the registries of that scope.
"""
import importlib.abc
import importlib.util
import sys

PACKAGE = 'ael_mmseg'
CONFIG_MODULE = 'mmengine.config.config'
CONFIG_UTILS_MODULE = 'mmengine.config.utils'


def package_dir(package: str = PACKAGE):
    """Folder of ``package`` as Python would import it, or None; does not import it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def patch_mmengine_config(config_module) -> None:
    """Teach an executed ``mmengine.config.config`` module the ``ael_mmseg::`` prefix."""
    sys.modules[CONFIG_UTILS_MODULE].MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
    stock = config_module.get_installed_path
    if getattr(stock, 'ael_mmseg_patched', False):
        return

    def get_installed_path(package: str) -> str:
        if package == PACKAGE:
            found = package_dir(package)
            if found is not None:
                return found
        return stock(package)

    get_installed_path.ael_mmseg_patched = True
    get_installed_path.__doc__ = stock.__doc__
    config_module.get_installed_path = get_installed_path


class _PatchAfterExec(importlib.abc.Loader):
    """Loader that runs the real loader, then :func:`patch_mmengine_config`."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        patch_mmengine_config(module)

    def __getattr__(self, name):  # get_source, get_filename, ... of the real loader
        return getattr(self.loader, name)


class MmengineConfigFinder(importlib.abc.MetaPathFinder):
    """Finds ``mmengine.config.config`` through the other finders and wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != CONFIG_MODULE:
            return None
        sys.meta_path.remove(self)  # one module, once
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchAfterExec(spec.loader)
        return spec


def install() -> None:
    """Patch mmengine now if its config module is loaded, else when it is imported."""
    module = sys.modules.get(CONFIG_MODULE)
    if module is not None and CONFIG_UTILS_MODULE in sys.modules:
        patch_mmengine_config(module)
    elif not any(isinstance(finder, MmengineConfigFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MmengineConfigFinder())
