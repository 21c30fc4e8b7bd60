"""Build step of ael_mmseg beyond pyproject.toml: the MIM files, as mmseg ships them.

mmengine resolves ``_base_ = ['ael_mmseg::ael/<config>.py']`` to
``<ael_mmseg package>/.mim/configs/ael/<config>.py`` (and reads
``.mim/model-index.yml``), so the package carries, under ``ael_mmseg/.mim``:

* ``configs/``, ``model-index.yml`` and ``tools/`` (without the scripts that
  only make sense in a checkout: setup_env.sh, run_tests.sh, run_demo.sh);
* in a wheel: copies, written into the build folder (never into the source tree);
* in an editable install (``pip install -e .``): relative symlinks in the
  source tree, ``ael_mmseg/.mim/<item> -> ../../<item>`` (git-ignored), so an
  edit of a config is seen at once, as mmseg's own editable install does.

Both also install ``ael_mmseg_mim.pth`` into site-packages. It runs
``_ael_mmseg_mim.install()`` at interpreter start-up, which teaches mmengine
the ``ael_mmseg::`` prefix before a config is parsed (see that module for why
this cannot wait for ``import ael_mmseg``).
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')
# Scripts that drive a checkout (its .venv, its tests); they do not work from a wheel.
CHECKOUT_ONLY_TOOLS = ('setup_env.sh', 'run_tests.sh', 'run_demo.sh')
PTH_NAME = 'ael_mmseg_mim.pth'
# A .pth line that starts with `import` is executed by site.py; find_spec first so
# that a half-removed install does not print an error at every start-up.
PTH_LINE = ("import importlib.util as _u; _u.find_spec('_ael_mmseg_mim') is not None "
            "and __import__('_ael_mmseg_mim').install()\n")


def _ignore(src_dir, names):
    ignored = {name for name in names if name == '__pycache__' or name.endswith(('.pyc', '.pyo'))}
    if osp.abspath(src_dir) == osp.join(ROOT, 'tools'):
        ignored |= set(CHECKOUT_ONLY_TOOLS) & set(names)
    return ignored


def copy_mim_items(mim_dir):
    """Copy the MIM items into ``mim_dir`` (a folder of the build, for a wheel)."""
    os.makedirs(mim_dir, exist_ok=True)
    for item in MIM_ITEMS:
        src, dst = osp.join(ROOT, item), osp.join(mim_dir, item)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=_ignore)
        else:
            shutil.copyfile(src, dst)


def link_mim_items(mim_dir):
    """Symlink the MIM items into ``mim_dir`` (the source tree's, for an editable install)."""
    os.makedirs(mim_dir, exist_ok=True)
    for item in MIM_ITEMS:
        dst = osp.join(mim_dir, item)
        target = osp.relpath(osp.join(ROOT, item), mim_dir)
        if osp.islink(dst) and os.readlink(dst) == target:
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        os.symlink(target, dst)


class BuildPyWithMim(build_py):
    """build_py that also ships the MIM items and the start-up hook's .pth file."""

    def run(self):
        super().run()
        if self.editable_mode:
            link_mim_items(osp.join(ROOT, 'ael_mmseg', '.mim'))
            # setuptools' editable_wheel points `install_lib` at the root of the
            # editable wheel it is assembling (its build folder is thrown away).
            pth_dir = self.get_finalized_command('install').install_lib
        else:
            copy_mim_items(osp.join(self.build_lib, 'ael_mmseg', '.mim'))
            pth_dir = self.build_lib
        with open(osp.join(pth_dir, PTH_NAME), 'w', encoding='utf-8') as f:
            f.write(PTH_LINE)


setup(cmdclass={'build_py': BuildPyWithMim})
