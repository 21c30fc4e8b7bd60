"""Export the teacher (or student) of an AEL checkpoint as a plain MMSeg checkpoint.

An AEL checkpoint holds ``student.*``, ``teacher.*`` and the AEL state
(confidence bank, ACM presence table). This tool keeps only one of the two
segmentors, strips its prefix and writes::

    {'state_dict': {...}, 'meta': {'source_checkpoint': ..., 'iter': ...,
                                   'model': 'teacher', 'dataset_meta': ...}}

which stock MMSeg loads into the *plain* segmentor (the ``model.segmentor``
dict of the AEL config). With ``--out-config`` it also writes that plain
config: the segmentor with the AEL model's data preprocessor, the val/test
dataloaders and evaluators, and the runtime settings, with plugin datasets,
metrics and head losses swapped for their stock base classes, so that
``mmseg.apis.init_model``, ``MMSegInferencer`` and the stock ``tools/test.py``
run without ``ael_mmseg``::

    python tools/model_converters/export_teacher.py work_dirs/ael/iter_18000.pth \
        work_dirs/ael/teacher.pth --config configs/ael/<config>.py \
        --out-config work_dirs/ael/teacher_config.py
    python tools/test.py work_dirs/ael/teacher_config.py work_dirs/ael/teacher.pth

Without ``--config``, ``--out-config`` uses the config stored in the
checkpoint's meta (the one it was trained with).
"""
import argparse
import copy
import inspect
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Set

import torch
from mmengine.config import Config, DictAction
from mmengine.utils import mkdir_or_exist

import ael_mmseg  # noqa: F401  (registers the plugin, allows mmengine checkpoints)
from ael_mmseg.version import __version__

PLUGIN_PACKAGE = 'ael_mmseg'
PLUGIN_IMPORTS = dict(imports=[PLUGIN_PACKAGE], allow_failed_imports=False)
# Runtime entries copied as they are from the AEL config.
RUNTIME_KEYS = ('default_scope', 'env_cfg', 'log_processor', 'log_level', 'vis_backends',
                'visualizer', 'randomness', 'tta_model', 'tta_pipeline')
DATA_KEYS = ('val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator')
# Validation-loop roles of the AEL model that prefix the saved-best metric.
ROLE_PREFIXES = ('teacher/', 'student/')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the teacher (or student) of an AEL checkpoint as a plain '
        'MMSeg checkpoint, and optionally the plain (non-AEL) config')
    parser.add_argument('checkpoint', help='AEL checkpoint (.pth) written by the train script')
    parser.add_argument('out', help='output checkpoint path')
    parser.add_argument('--student', action='store_true',
                        help='export the student instead of the EMA teacher')
    parser.add_argument('--config', help='AEL config; defaults to the one stored in the '
                        "checkpoint's meta (only used with --out-config)")
    parser.add_argument('--out-config', help='where to write the plain config (.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to the AEL config first, e.g. '
                        'test_dataloader.dataset.data_root=data/cityscapes')
    args = parser.parse_args(argv)
    if (args.config or args.cfg_options) and not args.out_config:
        parser.error('--config and --cfg-options only make sense with --out-config')
    return args


# ------------------------------------------------------------------ weights
def load_ael_checkpoint(path: str) -> dict:
    """Load a checkpoint with the safe (weights-only) unpickler.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        TypeError: If the file does not hold a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'export_teacher: checkpoint {path!r} does not exist')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
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
        exported_by=f'ael_mmseg {__version__} tools/model_converters/export_teacher.py')
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

    The plugin's own default hooks (``PreemptionCheckpointHook``) act in
    training only; the plain config is for evaluation and inference, so they
    are left out (printed) rather than keeping the plugin as a dependency.
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


def load_ael_config(args: argparse.Namespace, checkpoint: dict) -> Config:
    """The AEL config from ``--config``, else from the checkpoint's meta."""
    if args.config:
        cfg = Config.fromfile(args.config)
    else:
        text = (checkpoint.get('meta') or {}).get('cfg')
        if not isinstance(text, str):
            raise KeyError(f'export_teacher: {args.checkpoint!r} stores no config in '
                           "meta['cfg']; pass the AEL config with --config")
        cfg = Config.fromstring(text, '.py')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    which = 'student' if args.student else 'teacher'
    checkpoint = load_ael_checkpoint(args.checkpoint)
    weights = extract_weights(checkpoint, f'{which}.', args.checkpoint)
    exported = dict(state_dict=weights, meta=build_meta(checkpoint, args.checkpoint, which))
    mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    torch.save(exported, args.out)
    print(f'export_teacher: wrote the {which} ({len(weights)} tensors, iteration '
          f"{exported['meta']['iter']}) to {args.out}")
    if args.out_config:
        cfg = plain_config(load_ael_config(args, checkpoint))
        mkdir_or_exist(osp.dirname(osp.abspath(args.out_config)))
        cfg.dump(args.out_config)
        print(f'export_teacher: wrote the plain config to {args.out_config}')


if __name__ == '__main__':
    main()
