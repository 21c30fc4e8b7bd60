"""Export the teacher (or student) of an AEL checkpoint as a plain MMSeg model.

An AEL checkpoint holds ``student.*``, ``teacher.*`` and the AEL state
(confidence bank, ACM presence table). :func:`export_segmentor` keeps only one
of the two segmentors, strips its prefix and writes::

    {'state_dict': {...}, 'meta': {'source_checkpoint': ..., 'iter': ...,
                                   'model': 'teacher', 'dataset_meta': ...}}

which stock MMSeg loads into the *plain* segmentor (the ``model.segmentor``
dict of the AEL config). :func:`export_plain_config` writes that plain config:
the segmentor with the AEL model's data preprocessor, the val/test dataloaders
and evaluators, and the runtime settings, with plugin datasets, metrics and
head losses swapped for their stock base classes, so that
``mmseg.apis.init_model``, ``MMSegInferencer`` and the stock ``tools/test.py``
run without ``ael_mmseg``. ``tools/model_converters/export_teacher.py`` is the
command line of both.

Messages (each swap, what was written) are printed with an ``export_teacher:``
prefix, the command line's name.
"""
import copy
import inspect
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set, Union

import torch
from mmengine.config import Config
from mmengine.utils import mkdir_or_exist

from ael_mmseg.utils.compat import load_checkpoint_file
from ael_mmseg.version import __version__

PLUGIN_PACKAGE = 'ael_mmseg'
PLUGIN_IMPORTS = dict(imports=[PLUGIN_PACKAGE], allow_failed_imports=False)
# Runtime entries copied as they are from the AEL config.
RUNTIME_KEYS = ('default_scope', 'env_cfg', 'log_processor', 'log_level', 'vis_backends',
                'visualizer', 'randomness', 'tta_model', 'tta_pipeline')
DATA_KEYS = ('val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator')
# Validation-loop roles of the AEL model that prefix the saved-best metric.
ROLE_PREFIXES = ('teacher/', 'student/')
# The two segmentors of an AELSegmentor, as prefixes of its state dict.
ROLES = ('teacher', 'student')

PathLike = Union[str, os.PathLike]


# ------------------------------------------------------------------ weights
def load_ael_checkpoint(path: str) -> dict:
    """Load a checkpoint as safely as the installed torch allows.

    Weights-only with mmengine's objects allowed on torch >= 2.5; fully
    unpickled, with a warning, before (see :mod:`ael_mmseg.utils.compat`).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        TypeError: If the file does not hold a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'export_teacher: checkpoint {path!r} does not exist')
    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'export_teacher: {path!r} holds a {type(checkpoint).__name__}, '
                        'not a checkpoint dict')
    return checkpoint


def extract_weights(checkpoint: dict, prefix: str, path: str) -> 'OrderedDict[str, Any]':
    """The entries of ``checkpoint['state_dict']`` under ``prefix``, prefix stripped.

    Raises:
        KeyError: Naming ``path`` when no key starts with ``prefix``, i.e. the
            file is not an AEL checkpoint.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    weights = OrderedDict((key[len(prefix):], value) for key, value in state_dict.items()
                          if isinstance(key, str) and key.startswith(prefix))
    if not weights:
        heads = sorted({str(key).split('.')[0] for key in state_dict})[:8]
        raise KeyError(f'export_teacher: {path!r} has no {prefix!r} keys, so it is not an '
                       f'AEL (AELSegmentor) checkpoint; its top-level modules are {heads}')
    return weights


def _plain(value: Any) -> Any:
    """``value`` as built-in types only, so the weights-only unpickler loads it anywhere."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, 'tolist'):  # numpy arrays and scalars, tensors
        return value.tolist()
    return str(value)


def build_meta(checkpoint: dict, path: str, which: str) -> Dict[str, Any]:
    """Meta of the exported checkpoint: where it came from and the dataset meta."""
    source = checkpoint.get('meta') or {}
    meta = dict(
        source_checkpoint=osp.abspath(path),
        model=which,
        iter=source.get('iter'),
        epoch=source.get('epoch'),
        exported_by=f'ael_mmseg {__version__} ael_mmseg.apis.export_segmentor')
    for key in ('dataset_meta', 'experiment_name', 'mmengine_version', 'seed'):
        if key in source:
            meta[key] = source[key]
    return _plain(meta)


# ------------------------------------------------------------------- config
def plugin_type_names() -> Set[str]:
    """Names that ``ael_mmseg`` registered in any mmseg registry."""
    import mmseg.registry as registries
    from mmengine.registry import Registry
    names = set()
    for registry in vars(registries).values():
        if isinstance(registry, Registry):
            names.update(name for name, cls in registry.module_dict.items()
                         if cls.__module__.split('.')[0] == PLUGIN_PACKAGE)
    return names


def find_types(cfg: Any, names: Set[str], where: str = '') -> List[str]:
    """``'path: Type'`` for every ``type`` in ``cfg`` that is one of ``names``."""
    found = []
    if isinstance(cfg, dict):
        if isinstance(cfg.get('type'), str) and cfg['type'] in names:
            found.append(f"{where or '<root>'}: {cfg['type']}")
        for key, value in cfg.items():
            found += find_types(value, names, f'{where}.{key}' if where else str(key))
    elif isinstance(cfg, (list, tuple)):
        for index, value in enumerate(cfg):
            found += find_types(value, names, f'{where}[{index}]')
    return found


def _explicit_params(cls: type) -> Dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items()
            if name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def to_stock(cfg: dict, registry, where: str) -> dict:
    """Replace a plugin ``type`` by its nearest stock base class of ``registry``.

    Keeps what the plugin class passes on: drops the arguments that only the
    plugin class takes (e.g. ``PerClassIoUMetric``'s ``tail_classes``), sets
    the plugin's own defaults where they differ from the base class's, and
    the plugin's ``METAINFO`` (class names, palette) as ``metainfo``.

    Raises:
        TypeError: If the plugin class has no stock base class in ``registry``.
    """
    cls = registry.get(cfg['type'])
    if cls is None or cls.__module__.split('.')[0] != PLUGIN_PACKAGE:
        return cfg
    stock = next((base for base in cls.__mro__[1:]
                  if base.__module__.split('.')[0] != PLUGIN_PACKAGE
                  and registry.get(base.__name__) is base), None)
    if stock is None:
        raise TypeError(f'export_teacher: {where}.type={cfg["type"]!r} is an ael_mmseg class '
                        f'with no stock {registry.name} base class; the plain config would '
                        'need the plugin')
    own, base = _explicit_params(cls), _explicit_params(stock)
    new = {key: value for key, value in cfg.items() if key not in own or key in base}
    new['type'] = stock.__name__
    dropped = sorted(set(cfg) - set(new))
    for name, default in own.items():
        if name in base and name not in new and default is not inspect.Parameter.empty \
                and default != base[name]:
            new[name] = default
    metainfo = getattr(cls, 'METAINFO', None)
    if metainfo and 'metainfo' in base and 'metainfo' not in new and \
            metainfo != getattr(stock, 'METAINFO', None):
        new['metainfo'] = _plain(dict(metainfo))
    print(f'export_teacher: {where}: {cfg["type"]} -> stock {stock.__name__}'
          + (f' (dropped {dropped})' if dropped else ''))
    return new


def _stock_evaluator(evaluator: Any, where: str) -> Any:
    from mmseg.registry import METRICS
    if isinstance(evaluator, (list, tuple)):
        return [_stock_evaluator(e, f'{where}[{i}]') for i, e in enumerate(evaluator)]
    if isinstance(evaluator, dict) and isinstance(evaluator.get('type'), str):
        return to_stock(evaluator, METRICS, where)
    return evaluator


def _stock_dataloader(dataloader: dict, where: str) -> dict:
    from mmseg.registry import DATASETS
    dataset = dataloader.get('dataset')
    if isinstance(dataset, dict) and isinstance(dataset.get('type'), str):
        dataloader['dataset'] = to_stock(dataset, DATASETS, f'{where}.dataset')
    return dataloader


def _stock_losses(segmentor: dict) -> dict:
    """Plugin losses of the heads -> their stock base (only training reads them)."""
    from mmseg.registry import MODELS
    for head_key in ('decode_head', 'auxiliary_head'):
        heads = segmentor.get(head_key)
        for index, head in enumerate(heads if isinstance(heads, list) else [heads]):
            if not isinstance(head, dict):
                continue
            where = f'model.{head_key}' + (f'[{index}]' if isinstance(heads, list) else '')
            losses = head.get('loss_decode')
            if isinstance(losses, dict) and isinstance(losses.get('type'), str):
                head['loss_decode'] = to_stock(losses, MODELS, f'{where}.loss_decode')
            elif isinstance(losses, (list, tuple)):
                head['loss_decode'] = [
                    to_stock(loss, MODELS, f'{where}.loss_decode[{i}]')
                    if isinstance(loss, dict) and isinstance(loss.get('type'), str) else loss
                    for i, loss in enumerate(losses)]
    return segmentor


def _plain_default_hooks(hooks: dict) -> dict:
    """The AEL hooks save the best ``teacher/mIoU``; a plain run reports ``mIoU``.

    The plugin's default hooks (``PreemptionCheckpointHook``) act in training
    only; the plain config is for evaluation and inference, so they are left
    out (printed) rather than keeping the plugin as a dependency.
    """
    plugin_types = plugin_type_names()
    for name in [k for k, v in hooks.items()
                 if isinstance(v, dict) and v.get('type') in plugin_types]:
        print(f'export_teacher: default_hooks.{name} ({hooks[name]["type"]}) is a training '
              'hook of the plugin; left out of the plain config')
        hooks.pop(name)
    checkpoint = hooks.get('checkpoint')
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('save_best'), str):
        for prefix in ROLE_PREFIXES:
            if checkpoint['save_best'].startswith(prefix):
                checkpoint['save_best'] = checkpoint['save_best'][len(prefix):]
    return hooks


def plain_config(ael_cfg: Config) -> Config:
    """The stock MMSeg config of the segmentor inside an AEL config.

    Raises:
        KeyError: If ``ael_cfg`` has no AEL ``model.segmentor``.
    """
    model = ael_cfg.get('model') or {}
    if 'segmentor' not in model:
        raise KeyError(f'export_teacher: {ael_cfg.filename or "the config"} has no '
                       f"model.segmentor (model.type={model.get('type')!r}); pass the AEL "
                       'config the checkpoint was trained with')
    ael = copy.deepcopy(ael_cfg.to_dict())
    segmentor = ael['model']['segmentor']
    segmentor['data_preprocessor'] = ael['model'].get('data_preprocessor')
    segmentor = _stock_losses(segmentor)
    plain = dict(model=segmentor)
    for key in RUNTIME_KEYS:
        if key in ael:
            plain[key] = ael[key]
    if 'default_hooks' in ael:
        plain['default_hooks'] = _plain_default_hooks(ael['default_hooks'])
    for key in DATA_KEYS:
        if key in ael:
            plain[key] = ael[key]
    for key in ('val_dataloader', 'test_dataloader'):
        if isinstance(plain.get(key), dict):
            plain[key] = _stock_dataloader(plain[key], key)
    for key in ('val_evaluator', 'test_evaluator'):
        if key in plain:
            plain[key] = _stock_evaluator(plain[key], key)
    if 'val_dataloader' in plain:
        plain['val_cfg'] = dict(type='ValLoop')
    if 'test_dataloader' in plain:
        plain['test_cfg'] = dict(type='TestLoop')
        # What mmseg.apis.inference_model builds its pipeline from.
        plain['test_pipeline'] = copy.deepcopy(plain['test_dataloader']['dataset']['pipeline'])
    needs_plugin = find_types(plain, plugin_type_names())
    if needs_plugin:
        print('export_teacher: WARNING: the plain config still uses ael_mmseg types '
              f'{needs_plugin}; keeping custom_imports of the plugin')
        plain['custom_imports'] = PLUGIN_IMPORTS
    return Config(plain)


def load_ael_config(checkpoint: dict,
                    checkpoint_path: PathLike,
                    config: Optional[Union[PathLike, Config]] = None,
                    cfg_options: Optional[dict] = None,
                    config_from_checkpoint: bool = False) -> Config:
    """The AEL config: ``config`` if given, else (if allowed) the one in the checkpoint's meta.

    The config stored in ``meta['cfg']`` is Python source that mmengine
    executes to parse it, so a crafted checkpoint would run its code: it is
    used only when ``config_from_checkpoint`` says so.

    Args:
        checkpoint (dict): The loaded AEL checkpoint.
        checkpoint_path (str | PathLike): Where it was loaded from (for messages).
        config (str | PathLike | Config, optional): The AEL config (a file or a
            loaded config, which is copied, not changed).
        cfg_options (dict, optional): Overrides merged into the config.
        config_from_checkpoint (bool): Without ``config``, execute the config
            text of the checkpoint's meta. Only for checkpoints you trust.

    Raises:
        ValueError: If neither ``config`` nor ``config_from_checkpoint`` is given.
        KeyError: If the checkpoint's config is asked for and it stores none.
    """
    if config is None:
        if not config_from_checkpoint:
            raise ValueError(
                f'export_teacher: no AEL config for the plain config of '
                f'{os.fspath(checkpoint_path)!r}: pass it (--config, or config= in Python), or '
                "allow executing the config text stored in the checkpoint's meta "
                '(--config-from-checkpoint, or config_from_checkpoint=True; it runs as Python, '
                'so only for a checkpoint you trust)')
        text = (checkpoint.get('meta') or {}).get('cfg')
        if not isinstance(text, str):
            raise KeyError(f'export_teacher: {os.fspath(checkpoint_path)!r} stores no config in '
                           "meta['cfg']; pass the AEL config (--config, or config= in Python)")
        config = Config.fromstring(text, '.py')
    return _with_options(config, cfg_options)


def _with_options(config: Union[PathLike, Config], cfg_options: Optional[dict]) -> Config:
    """A copy of ``config`` (a file or a loaded config) with ``cfg_options`` merged."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        cfg = Config.fromfile(os.fspath(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def export_plain_config(ael_cfg: Union[PathLike, Config], out_path: PathLike,
                        cfg_options: Optional[dict] = None) -> Config:
    """Write the stock MMSeg config of the segmentor inside an AEL config.

    Args:
        ael_cfg (str | PathLike | Config): The AEL config (not changed).
        out_path (str | PathLike): Where to write the plain config (``.py``);
            missing folders are created.
        cfg_options (dict, optional): Overrides merged into the AEL config
            first, e.g. ``{'test_dataloader.dataset.data_root': 'data/x'}``.

    Returns:
        Config: The plain config that was written.
    """
    return _write_plain_config(plain_config(_with_options(ael_cfg, cfg_options)), out_path)


def _write_plain_config(cfg: Config, out_path: PathLike) -> Config:
    out_path = os.fspath(out_path)
    mkdir_or_exist(osp.dirname(osp.abspath(out_path)))
    cfg.dump(out_path)
    print(f'export_teacher: wrote the plain config to {out_path}')
    return cfg


def export_segmentor(checkpoint_path: PathLike,
                     out_path: PathLike,
                     which: str = 'teacher',
                     out_config: Optional[PathLike] = None,
                     config: Optional[Union[PathLike, Config]] = None,
                     cfg_options: Optional[dict] = None,
                     config_from_checkpoint: bool = False) -> Dict[str, Any]:
    """Write one segmentor of an AEL checkpoint as a plain MMSeg checkpoint.

    Args:
        checkpoint_path (str | PathLike): AEL checkpoint written by training.
        out_path (str | PathLike): Output checkpoint; missing folders are created.
        which (str): ``'teacher'`` (the EMA teacher) or ``'student'``.
        out_config (str | PathLike, optional): Also write the plain config
            here (see :func:`export_plain_config`).
        config (str | PathLike | Config, optional): The AEL config for
            ``out_config``.
        cfg_options (dict, optional): Overrides merged into the AEL config
            before the plain config is made.
        config_from_checkpoint (bool): For ``out_config`` without ``config``,
            execute the config text stored in the checkpoint's meta (the one it
            was trained with). It runs as Python: only for checkpoints you trust.

    Returns:
        dict: What was saved: ``state_dict`` (prefix stripped) and ``meta``.

    Raises:
        ValueError: If ``which`` is neither role, ``config`` /
            ``cfg_options`` come without ``out_config``, or ``out_config``
            comes with neither ``config`` nor ``config_from_checkpoint``.
        FileNotFoundError, TypeError, KeyError: If the checkpoint is missing,
            not a dict, or not an AEL checkpoint (see :func:`extract_weights`).
    """
    if which not in ROLES:
        raise ValueError(f'export_teacher: which must be one of {ROLES}, got {which!r}')
    if (config is not None or cfg_options) and out_config is None:
        raise ValueError('export_teacher: config and cfg_options only make sense with '
                         'out_config')
    checkpoint_path, out_path = os.fspath(checkpoint_path), os.fspath(out_path)
    if out_config is not None and config is None and not config_from_checkpoint:
        # Refused before anything is written.
        load_ael_config({}, checkpoint_path)
    checkpoint = load_ael_checkpoint(checkpoint_path)
    weights = extract_weights(checkpoint, f'{which}.', checkpoint_path)
    exported = dict(state_dict=weights, meta=build_meta(checkpoint, checkpoint_path, which))
    mkdir_or_exist(osp.dirname(osp.abspath(out_path)))
    torch.save(exported, out_path)
    print(f'export_teacher: wrote the {which} ({len(weights)} tensors, iteration '
          f"{exported['meta']['iter']}) to {out_path}")
    if out_config is not None:
        # The checkpoint is loaded once, for the weights and (without config) its config.
        ael_cfg = load_ael_config(checkpoint, checkpoint_path, config, cfg_options,
                                  config_from_checkpoint)
        _write_plain_config(plain_config(ael_cfg), out_config)
    return exported
