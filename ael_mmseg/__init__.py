"""AEL (Adaptive Equalization Learning) for MMSegmentation 1.x.

Importing the package registers everything into mmseg's registries, which is
what ``custom_imports = dict(imports=['ael_mmseg'])`` in a config does.
"""
# isort: off
from .utils import compat  # noqa: F401  (patches torch.load before any checkpoint)
from .utils import weights_download  # noqa: F401  (a failed weights download says what to do)
from . import datasets, engine, evaluation, models  # noqa: F401
from .version import __version__
# isort: on

__all__ = ['__version__']
