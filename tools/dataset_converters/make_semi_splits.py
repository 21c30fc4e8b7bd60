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

``--out-dir`` defaults to ``DATA_ROOT/splits``. For voc_aug, ``labeled_train.txt``
and ``labeled_aug.txt`` are written beside ``labeled.txt``: mmseg reads the labels
of train.txt ids from SegmentationClass and of aug.txt ids from
SegmentationClassAug. See ``ael_mmseg/datasets/splits.py``.
"""
import argparse
import os.path as osp
import sys

from ael_mmseg.datasets.splits import (DATASETS, NUM_TRAIN_IMAGES, PARTITIONS, check_split_images,
                                       make_split, partition_name, read_split_file,
                                       resolve_partition, train_id_sources, write_split)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write semi-supervised split files.')
    parser.add_argument('dataset', choices=sorted(DATASETS))
    parser.add_argument('data_root', help='data root of the mmseg dataset config')
    parser.add_argument('--out-dir', help='output root (default: DATA_ROOT/splits)')
    parser.add_argument('--folds', type=int, default=5, help='random splits per partition')
    parser.add_argument('--seed', type=int, default=0, help='seed of fold 0 (fold k: seed+k)')
    parser.add_argument('--partitions', nargs='+',
                        help='fractions (1/8) or labeled counts (100); default: the '
                        "paper's partitions of the dataset")
    parser.add_argument('--import', dest='import_file', metavar='LIST_FILE',
                        help='convert a published labeled list instead of drawing splits')
    parser.add_argument('--name', help='output sub-directory for --import '
                        '(default: imported_<number of labeled ids>)')
    args = parser.parse_args(argv)
    if args.folds < 1:
        parser.error(f'--folds must be >= 1, got {args.folds}')
    if args.import_file and args.partitions:
        parser.error('--import and --partitions are exclusive')
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


def random_splits(args, sources, all_ids):
    rows = []
    for partition in args.partitions or list(PARTITIONS[args.dataset]):
        num_labeled = resolve_partition(partition, len(all_ids), args.dataset)
        out = osp.join(args.out_dir, args.dataset, partition_name(partition))
        for fold in range(args.folds):
            labeled, unlabeled = make_split(all_ids, num_labeled, args.seed + fold)
            write_split(osp.join(out, f'fold{fold}'), labeled, unlabeled, sources)
        rows.append((partition, num_labeled, len(all_ids) - num_labeled, args.folds, out))
    return rows


def main(argv=None):
    args = parse_args(argv)
    args.out_dir = args.out_dir or osp.join(args.data_root, 'splits')
    try:
        sources = train_id_sources(args.dataset, args.data_root)
        all_ids = sorted(i for ids in sources.values() for i in ids)
        if len(all_ids) != NUM_TRAIN_IMAGES[args.dataset]:
            print(f'note: {len(all_ids)} training images found, the full {args.dataset} '
                  f'training set has {NUM_TRAIN_IMAGES[args.dataset]}')
        if args.import_file:
            rows = import_split(args, sources, all_ids)
        else:
            rows = random_splits(args, sources, all_ids)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print(f'{"partition":>10} {"labeled":>8} {"unlabeled":>9} {"folds":>5}  directory')
    for partition, n_lab, n_unlab, folds, out in rows:
        print(f'{partition:>10} {n_lab:>8} {n_unlab:>9} {folds:>5}  {out}')


if __name__ == '__main__':
    main()
