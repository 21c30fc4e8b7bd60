"""Write semi-supervised labeled/unlabeled split files (MMSeg ``ann_file`` format).

Random splits (fold k uses seed + k)::

    python tools/dataset_converters/make_semi_splits.py cityscapes data/cityscapes
    python tools/dataset_converters/make_semi_splits.py voc_aug data/VOCdevkit/VOC2012 \\
        --partitions 1/16 1/8 --folds 3
    # -> <out>/<dataset>/<1_16>/fold<k>/{labeled,unlabeled}.txt; integer partitions
    #    (--partitions 100) give <out>/<dataset>/100/fold<k>/...

Import a published labeled list (U2PL style or one id per line); unlabeled = all
training ids minus the listed ones::

    python tools/dataset_converters/make_semi_splits.py cityscapes data/cityscapes \\
        --import u2pl/cityscapes/744/labeled.txt --name u2pl_744

Your own data in MMSeg's plain layout (``img_dir/{train,val}``,
``ann_dir/{train,val}``, any suffixes), classes and suffixes from your training
config (or ``--classes`` / ``--img-suffix`` / ``--seg-map-suffix``)::

    python tools/dataset_converters/make_semi_splits.py plain data/my_dataset \\
        --config configs/ael/my_config.py --partitions 1/8 --folds 3
    # -> <out>/plain/1_8/fold<k>/{labeled,unlabeled}.txt and class_frequencies.json

Before writing anything, plain mode checks every mask (train and val): it
exists, is single-channel, has its image's size and only class ids or the
ignore index; with ``--config`` also that the class names, palette and every
``num_classes`` of the model agree. ``class_frequencies.json`` holds the labeled
split's pixels per class and its tail classes (the rarest classes holding at
most ``--tail-share`` of the labeled pixels), which
``PerClassIoUMetric(tail_classes_file=...)`` reads.

``--out-dir`` defaults to ``DATA_ROOT/splits``. For voc_aug, ``labeled_train.txt``
and ``labeled_aug.txt`` are written beside ``labeled.txt``: mmseg reads the labels
of train.txt ids from SegmentationClass and of aug.txt ids from
SegmentationClassAug. See ``ael_mmseg/datasets/splits.py`` and
``ael_mmseg/datasets/plain_layout.py``.
"""
import argparse
import inspect
import os.path as osp
import sys

from ael_mmseg.datasets.plain_layout import (CLASS_FREQUENCY_FILE, PLAIN_ANN_DIR, PLAIN_IMG_DIR,
                                             check_classes, class_frequency_report, plain_image_ids,
                                             scan_label_maps, write_class_frequencies)
from ael_mmseg.datasets.splits import (DATASETS, NUM_TRAIN_IMAGES, PARTITIONS, check_split_images,
                                       make_split, partition_name, read_split_file,
                                       resolve_partition, train_id_sources, write_split)

PLAIN = 'plain'
# Options that only the plain layout takes (the named datasets fix them).
PLAIN_OPTIONS = ('config', 'classes', 'img_suffix', 'seg_map_suffix', 'ignore_index',
                 'reduce_zero_label')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write semi-supervised split files.')
    parser.add_argument('dataset', choices=sorted(DATASETS) + [PLAIN],
                        help=f'a named dataset, or {PLAIN!r}: MMSeg\'s plain layout '
                        f'{PLAIN_IMG_DIR}/{{train,val}}, {PLAIN_ANN_DIR}/{{train,val}}')
    parser.add_argument('data_root', help='data root of the mmseg dataset config')
    parser.add_argument('--out-dir', help='output root (default: DATA_ROOT/splits)')
    parser.add_argument('--folds', type=int, default=5, help='random splits per partition')
    parser.add_argument('--seed', type=int, default=0, help='seed of fold 0 (fold k: seed+k)')
    parser.add_argument('--partitions', nargs='+',
                        help='fractions (1/8) or labeled counts (100); default: the '
                        "paper's partitions of the dataset (required for plain)")
    parser.add_argument('--import', dest='import_file', metavar='LIST_FILE',
                        help='convert a published labeled list instead of drawing splits')
    parser.add_argument('--name', help='output sub-directory for --import '
                        '(default: imported_<number of labeled ids>)')
    plain = parser.add_argument_group(f'{PLAIN} layout')
    plain.add_argument('--config', help='training config: classes (metainfo), suffixes, '
                       'reduce_zero_label and ignore_index are read from it, and its class '
                       'names, palette and num_classes are checked against each other')
    plain.add_argument('--classes', nargs='+', metavar='NAME',
                       help='class names, in label-id order (instead of --config)')
    plain.add_argument('--img-suffix', help="image suffix (default: the config's, else .jpg)")
    plain.add_argument('--seg-map-suffix',
                       help="mask suffix (default: the config's, else .png)")
    plain.add_argument('--ignore-index', type=int,
                       help="mask value that is no class (default: the config's, else 255)")
    plain.add_argument('--reduce-zero-label', action='store_true', default=None,
                       help='masks use 0 for "ignore" and 1..C for the classes')
    plain.add_argument('--tail-share', type=float, default=0.05,
                       help='tail classes: the rarest classes holding at most this share of '
                       'the labeled pixels (default: 0.05)')
    args = parser.parse_args(argv)
    if args.folds < 1:
        parser.error(f'--folds must be >= 1, got {args.folds}')
    if args.import_file and args.partitions:
        parser.error('--import and --partitions are exclusive')
    if not 0 < args.tail_share < 1:
        parser.error(f'--tail-share must be in (0, 1), got {args.tail_share}')
    if args.dataset == PLAIN:
        if bool(args.config) == bool(args.classes):
            parser.error(f'{PLAIN}: give exactly one of --config and --classes')
        if not (args.partitions or args.import_file):
            parser.error(f'{PLAIN}: give --partitions (fractions like 1/8 or labeled counts '
                         'like 100) or --import')
    else:
        given = [o for o in PLAIN_OPTIONS if getattr(args, o) not in (None, False)]
        if given:
            parser.error(f'--{given[0].replace("_", "-")} is for the {PLAIN} layout only; '
                         f'{args.dataset} fixes it')
    return args


def import_split(args, sources, all_ids):
    spec = DATASETS[args.dataset]
    labeled = read_split_file(args.import_file, spec['img_dir'], spec['img_suffix'])
    check_split_images(labeled, osp.join(args.data_root, spec['img_dir']), spec['img_suffix'])
    outside = sorted(set(labeled) - set(all_ids))
    if outside:
        raise ValueError(f'{args.import_file}: {len(outside)} listed images are not '
                         f'{args.dataset} training images, e.g. {outside[:10]}')
    unlabeled = sorted(set(all_ids) - set(labeled))
    out = osp.join(args.out_dir, args.dataset, args.name or f'imported_{len(labeled)}')
    write_split(out, sorted(labeled), unlabeled, sources)
    return [(osp.basename(out), len(labeled), len(unlabeled), '-', out)]


def draw_splits(args, all_ids):
    """Seeded folds per partition.

    Returns:
        list[tuple]: ``(partition, out_dir, [(fold_dir, labeled, unlabeled), ...])``.

    Raises:
        ValueError: For a partition that labels no image or every image.
    """
    planned = []
    for partition in args.partitions or list(PARTITIONS[args.dataset]):
        num_labeled = resolve_partition(partition, len(all_ids), args.dataset)
        if num_labeled == len(all_ids):
            raise ValueError(f'partition {partition!r} labels all {len(all_ids)} training '
                             'images: the unlabeled split would be empty')
        out = osp.join(args.out_dir, args.dataset, partition_name(partition))
        folds = [(osp.join(out, f'fold{fold}'), *make_split(all_ids, num_labeled, args.seed + fold))
                 for fold in range(args.folds)]
        planned.append((partition, out, folds))
    return planned


def random_splits(args, sources, all_ids):
    rows = []
    for partition, out, folds in draw_splits(args, all_ids):
        for folder, labeled, unlabeled in folds:
            write_split(folder, labeled, unlabeled, sources)
        rows.append((partition, len(folds[0][1]), len(folds[0][2]), len(folds), out))
    return rows


# ------------------------------------------------------------------ plain layout
def _dataset_class(type_name):
    """The registered dataset class of ``type_name`` (imports mmseg and the plugin)."""
    import mmseg.datasets  # noqa: F401  (registers mmseg's datasets)
    from mmseg.registry import DATASETS as MMSEG_DATASETS

    import ael_mmseg  # noqa: F401
    cls = MMSEG_DATASETS.get(type_name)
    if cls is None:
        raise ValueError(f'dataset type {type_name!r} is not registered in mmseg')
    return cls


def _dataset_setting(dataset_cfg, key, cls_cache):
    """A dataset argument: the config's, else the dataset class's default."""
    if key in dataset_cfg:
        return dataset_cfg[key]
    if 'cls' not in cls_cache:
        cls_cache['cls'] = _dataset_class(dataset_cfg['type'])
    return inspect.signature(cls_cache['cls'].__init__).parameters[key].default


def _num_classes_entries(model):
    """``(config key, num_classes)`` of every model part that sets it."""
    prefix, segmentor = ('model.segmentor', model['segmentor']) if 'segmentor' in model \
        else ('model', model)
    entries = []
    for head in ('decode_head', 'auxiliary_head'):
        cfgs = segmentor.get(head)
        cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs or [])
        for k, cfg in enumerate(cfgs):
            if 'num_classes' in cfg:
                key = f'{prefix}.{head}' + (f'[{k}]' if len(cfgs) > 1 else '')
                entries.append((f'{key}.num_classes', cfg['num_classes']))
    for part in ('confidence_bank', 'cutmix', 'copy_paste'):
        if isinstance(model.get(part), dict) and 'num_classes' in model[part]:
            entries.append((f'model.{part}.num_classes', model[part]['num_classes']))
    return entries


def _check_prefix(dataset_cfg, where, split, path):
    prefix = dataset_cfg.get('data_prefix') or {}
    expected = dict(img_path=f'{PLAIN_IMG_DIR}/{split}', seg_map_path=f'{PLAIN_ANN_DIR}/{split}')
    for key, value in expected.items():
        if key in prefix and osp.normpath(prefix[key]) != value:
            raise ValueError(f'{path}: {where}.data_prefix.{key}={prefix[key]!r}, but the '
                             f'{PLAIN} layout reads {value!r}')


def settings_from_config(path):
    """Classes, suffixes, ignore index and zero-label reduction of a training config.

    Also checks, before any training, that the class names, the palette and
    every ``num_classes`` of the model agree, that the validation data uses
    the same classes and that the data prefixes are the plain layout's.

    Returns:
        dict: ``classes``, ``img_suffix``, ``seg_map_suffix``,
        ``ignore_index``, ``reduce_zero_label``, ``data_root``.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} does not exist')
    cfg = Config.fromfile(path, import_custom_modules=False)
    train = cfg.train_dataloader.dataset
    semi = 'labeled' in train
    labeled = train.labeled if semi else train
    where = 'train_dataloader.dataset' + ('.labeled' if semi else '')
    cache = {}
    metainfo = labeled.get('metainfo') or {}
    classes = metainfo.get('classes')
    palette = metainfo.get('palette')
    if classes is None:
        cache['cls'] = _dataset_class(labeled['type'])
        classes = cache['cls'].METAINFO.get('classes')
        palette = palette or cache['cls'].METAINFO.get('palette')
    if not classes:
        raise ValueError(f'{path}: {where} names no classes; set its metainfo=dict(classes=...)')
    classes = list(classes)
    check_classes(classes, palette, f'{path}: {where}.metainfo')
    for key, value in _num_classes_entries(cfg.model):
        if value != len(classes):
            raise ValueError(f'{path}: {key}={value} but {where}.metainfo.classes names '
                             f'{len(classes)} classes {classes}; set num_classes = '
                             'len(classes) once and use it everywhere')
    _check_prefix(labeled, where, 'train', path)
    for loader in ('val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        other = (dataset.get('metainfo') or {}).get('classes')
        if other is not None and list(other) != classes:
            raise ValueError(f'{path}: {loader}.dataset.metainfo.classes {list(other)} differ '
                             f'from {where}.metainfo.classes {classes}')
        if dataset:
            _check_prefix(dataset, f'{loader}.dataset', 'val', path)
    ignore_index = train.get('ignore_index', 255) if semi else 255
    return dict(classes=classes, img_suffix=_dataset_setting(labeled, 'img_suffix', cache),
                seg_map_suffix=_dataset_setting(labeled, 'seg_map_suffix', cache),
                reduce_zero_label=bool(_dataset_setting(labeled, 'reduce_zero_label', cache)),
                ignore_index=ignore_index, data_root=labeled.get('data_root'),
                ann_file=labeled.get('ann_file'))


def plain_settings(args):
    """Settings from ``--config`` or ``--classes``, overridden by explicit options."""
    if args.config:
        settings = settings_from_config(args.config)
        root = settings.pop('data_root')
        args.config_ann_file = settings.pop('ann_file')
        if root and osp.abspath(root) != osp.abspath(args.data_root):
            print(f'note: {args.config} reads data_root={root!r}, the splits are written for '
                  f'{args.data_root!r}')
    else:
        check_classes(args.classes, where='--classes')
        settings = dict(classes=list(args.classes), img_suffix='.jpg', seg_map_suffix='.png',
                        ignore_index=255, reduce_zero_label=False)
    for key in ('img_suffix', 'seg_map_suffix', 'ignore_index', 'reduce_zero_label'):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def _scan(args, settings, split, ids):
    return scan_label_maps(args.data_root, split, ids, settings['img_suffix'],
                           settings['seg_map_suffix'], settings['classes'],
                           settings['ignore_index'], settings['reduce_zero_label'])


def plain_splits(args):
    """Check a plain-layout dataset, then write its splits and class frequencies.

    Nothing is written unless every check passes.
    """
    settings = plain_settings(args)
    classes = settings['classes']
    all_ids = plain_image_ids(args.data_root, 'train', settings['img_suffix'])
    val_ids = plain_image_ids(args.data_root, 'val', settings['img_suffix'])
    print(f'{PLAIN}: checking the masks of {args.data_root} ...', flush=True)
    if args.import_file:
        labeled = read_split_file(args.import_file, f'{PLAIN_IMG_DIR}/train',
                                  settings['img_suffix'])
        outside = sorted(set(labeled) - set(all_ids))
        if outside:
            raise ValueError(f'{args.import_file}: {len(outside)} listed images are not under '
                             f'{osp.join(args.data_root, PLAIN_IMG_DIR, "train")}, e.g. '
                             f'{outside[:10]}')
        unlabeled = sorted(set(all_ids) - set(labeled))
        if not unlabeled:
            raise ValueError(f'{args.import_file} lists every training image: the unlabeled '
                             'split would be empty')
        name = args.name or f'imported_{len(labeled)}'
        out = osp.join(args.out_dir, PLAIN, name)
        planned = [(name, out, [(out, sorted(labeled), unlabeled)])]
        counts = _scan(args, settings, 'train', sorted(labeled))
    else:
        planned = draw_splits(args, all_ids)
        counts = _scan(args, settings, 'train', all_ids)
    _scan(args, settings, 'val', val_ids)
    print(f'{PLAIN}: {len(all_ids)} training and {len(val_ids)} val images, {len(classes)} '
          f'classes {classes}; {len(counts) + len(val_ids)} masks checked (present, '
          'single-channel, image size, class ids)')
    reports = {}
    for _, _, folds in planned:
        for folder, labeled, _ in folds:
            try:
                reports[folder] = class_frequency_report(labeled, counts, classes,
                                                         args.tail_share)
            except ValueError as error:
                raise ValueError(f'labeled split {osp.relpath(folder, args.out_dir)}: '
                                 f'{error}') from None
    rows, tails = [], []
    for partition, out, folds in planned:
        for folder, labeled, unlabeled in folds:
            write_split(folder, labeled, unlabeled)
            write_class_frequencies(osp.join(folder, CLASS_FREQUENCY_FILE), reports[folder])
            tails.append((osp.relpath(folder, args.out_dir), reports[folder]))
        rows.append((partition, len(folds[0][1]), len(folds[0][2]),
                     '-' if args.import_file else len(folds), out))
    _note_config_split(args, [folder for _, _, folds in planned for folder, _, _ in folds])
    return rows, tails


def _note_config_split(args, folders):
    """Say whether the config's labeled ``ann_file`` is one of the splits just written."""
    ann_file = getattr(args, 'config_ann_file', None)
    if not ann_file:
        return
    path = ann_file if osp.isabs(ann_file) else osp.join(args.data_root, ann_file)
    written = [osp.abspath(osp.join(f, 'labeled.txt')) for f in folders]
    if osp.abspath(path) not in written:
        print(f'note: {args.config} trains on {path}, which this run did not write')


def print_tails(tails, tail_share):
    print(f'tail classes (rarest classes holding <= {tail_share:.1%} of the labeled pixels; '
          f'{CLASS_FREQUENCY_FILE} in each folder):')
    for folder, report in tails:
        share = {c['name']: c['share'] for c in report['per_class']}
        listed = ', '.join(f'{name} {share[name]:.2%}' for name in report['tail_classes'])
        print(f'  {folder}: {listed}')
    for folder, report in tails:
        for name in report['absent_classes']:
            print(f'warning: {folder}: class {name!r} has no labeled pixel; the model cannot '
                  'learn it from this split (draw more labeled images or another seed)')


def main(argv=None):
    args = parse_args(argv)
    args.out_dir = args.out_dir or osp.join(args.data_root, 'splits')
    tails = []
    try:
        if args.dataset == PLAIN:
            rows, tails = plain_splits(args)
        else:
            sources = train_id_sources(args.dataset, args.data_root)
            all_ids = sorted(i for ids in sources.values() for i in ids)
            if len(all_ids) != NUM_TRAIN_IMAGES[args.dataset]:
                print(f'note: {len(all_ids)} training images found, the full {args.dataset} '
                      f'training set has {NUM_TRAIN_IMAGES[args.dataset]}')
            if args.import_file:
                rows = import_split(args, sources, all_ids)
            else:
                rows = random_splits(args, sources, all_ids)
    except (ValueError, OSError) as e:  # OSError: missing or unreadable files
        sys.exit(f'error: {e}')
    print(f'{"partition":>10} {"labeled":>8} {"unlabeled":>9} {"folds":>5}  directory')
    for partition, n_lab, n_unlab, folds, out in rows:
        print(f'{partition:>10} {n_lab:>8} {n_unlab:>9} {folds:>5}  {out}')
    if tails:
        print_tails(tails, args.tail_share)


if __name__ == '__main__':
    main()
