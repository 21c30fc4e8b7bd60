"""Registries of the scope ``ael_mmseg``: children of mmseg's, holding nothing of their own.

ael_mmseg registers all its modules into mmseg's registries (scope ``mmseg``).
A config that inherits a shipped config through ``ael_mmseg::`` gets
``_scope_='ael_mmseg'`` on every dict of that base (mmengine's
``Config._dict_to_config_dict``); to build one, mmengine imports
``ael_mmseg.registry`` (which imports ael_mmseg and so registers it) and looks
for the registry of that scope in each registry tree. Each registry here is a
child of mmseg's registry of the same kind (of mmengine's root registry where
mmseg has none), so a name is found in mmseg's registry or, through it, in
mmengine's, exactly as under the scope ``mmseg``.
"""
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

SCOPE = 'ael_mmseg'


def _child_registries() -> dict:
    mmseg_children = {id(reg.parent): reg for reg in vars(mmseg_registry).values()
                      if isinstance(reg, Registry) and reg.parent is not None}
    children = {}
    for name, root in vars(mmengine_registry).items():
        if isinstance(root, Registry) and root.parent is None:
            parent = mmseg_children.get(id(root), root)
            # locations: what mmengine imports before a first look-up in the
            # registry (without one it would call ael_mmseg.utils.register_all_modules).
            children[name] = Registry(root.name, parent=parent, scope=SCOPE,
                                      locations=['ael_mmseg'])
    return children


_CHILDREN = _child_registries()
globals().update(_CHILDREN)
__all__ = sorted(_CHILDREN)
