"""Labeled / unlabeled split files for semi-supervised segmentation.

AEL (NeurIPS 2021, Sec. 4.1) reports every result as the mean over five random
labeled/unlabeled splits of the training set, but the original code
(hzhupku/SemiSeg-AEL) released no split files: it drew the labeled subset
inside the dataset with ``random.sample`` seeded by the config, so results
depended on an unpublished draw. This module makes splits explicit files:

* :func:`make_split` draws a seeded, reproducible split (fold ``k`` of the CLI
  uses ``seed + k``). It cannot reproduce the original's draws (they also
  depended on the order of its list file); to compare with published numbers,
  import the lists later papers released (U2PL, ...) with
  :func:`read_split_file`.
* Files are written in MMSeg's ``ann_file`` format (``BaseSegDataset``): one
  image id per line, the image path relative to ``img_dir`` without
  ``img_suffix``, e.g. ``aachen/aachen_000000_000019`` for Cityscapes or
  ``2007_000032`` for VOC, so ``labeled.txt`` / ``unlabeled.txt`` plug into a
  dataset config as ``ann_file``.

The labeled counts in :data:`PARTITIONS` are the ones of the paper's tables
(``ceil(num_train / denominator)``).
"""
import os
import os.path as osp
import random
from fractions import Fraction
from math import ceil
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

#: Training images per dataset (mmseg layouts, see :data:`DATASETS`).
NUM_TRAIN_IMAGES: Dict[str, int] = {'cityscapes': 2975, 'voc_aug': 10582, 'voc': 1464}

#: Labeled images per partition, as in the AEL / CPS / U2PL tables.
PARTITIONS: Dict[str, Dict[str, int]] = {
    'cityscapes': {'1/32': 93, '1/16': 186, '1/8': 372, '1/4': 744, '1/2': 1488},
    'voc_aug': {'1/32': 331, '1/16': 662, '1/8': 1323, '1/4': 2646, '1/2': 5291},
    'voc': {'1/16': 92, '1/8': 183, '1/4': 366, '1/2': 732},
}

#: Where each dataset's training images and ids live, relative to the data
#: root of mmseg's dataset configs (``data/cityscapes``,
#: ``data/VOCdevkit/VOC2012``). ``train_lists`` are the ann files whose union
#: is the training set (``None``: every image under ``img_dir``).
#: ``voc_aug``: ``configs/_base_/datasets/pascal_voc12_aug.py`` trains on the
#: concatenation of ``train.txt`` (1,464 ids, ``SegmentationClass``) and the
#: ``aug.txt`` that ``tools/dataset_converters/voc_aug.py`` writes (SBD
#: train+val minus VOC train/val: 9,118 ids, ``SegmentationClassAug``).
DATASETS: Dict[str, dict] = {
    'cityscapes': dict(img_dir='leftImg8bit/train', img_suffix='_leftImg8bit.png',
                       train_lists=None),
    'voc_aug': dict(img_dir='JPEGImages', img_suffix='.jpg',
                    train_lists=('ImageSets/Segmentation/train.txt',
                                 'ImageSets/Segmentation/aug.txt')),
    'voc': dict(img_dir='JPEGImages', img_suffix='.jpg',
                train_lists=('ImageSets/Segmentation/train.txt', )),
}

_IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def partition_name(partition: str) -> str:
    """Directory name of a partition: ``'1/32'`` -> ``'1_32'``, ``'93'`` -> ``'93'``."""
    return str(partition).replace('/', '_')


def resolve_partition(partition: str, num_images: int, dataset: Optional[str] = None) -> int:
    """Number of labeled images of a partition.

    Args:
        partition (str): A fraction ``'a/b'`` or an integer count ``'n'``.
        num_images (int): Number of training images to split.
        dataset (str, optional): Key of :data:`PARTITIONS`; a fraction listed
            there is looked up when ``num_images`` is the dataset's full
            training set, otherwise ``ceil(num_images * a / b)``.

    Returns:
        int: The labeled count, in ``[1, num_images]``.
    """
    text = str(partition).strip()
    if '/' in text:
        try:
            frac = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f'partition {partition!r} is neither a fraction like 1/8 '
                             'nor an integer count') from None
        if not 0 < frac <= 1:
            raise ValueError(f'partition {partition!r} must be a fraction in (0, 1]')
        table = PARTITIONS.get(dataset, {})
        if num_images == NUM_TRAIN_IMAGES.get(dataset) and text in table:
            count = table[text]
        else:
            count = ceil(num_images * frac)
    else:
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f'partition {partition!r} is neither a fraction like 1/8 '
                             'nor an integer count') from None
    if not 1 <= count <= num_images:
        raise ValueError(f'partition {partition!r} gives {count} labeled images; it must be '
                         f'in [1, {num_images}] (the number of training images)')
    return count


def _check_unique(ids: Sequence[str], name: str) -> None:
    seen = set()
    for i in ids:
        if i in seen:
            raise ValueError(f'{name} contains the id {i!r} more than once')
        seen.add(i)


def make_split(image_ids: Sequence[str], num_labeled: int,
               seed: int) -> Tuple[List[str], List[str]]:
    """Draw a labeled / unlabeled split, reproducibly.

    The ids are sorted before drawing, so the split depends only on the set
    of ids, ``num_labeled`` and ``seed`` (not on file-system order); the draw
    uses Python's ``random.Random(seed).sample``.

    Args:
        image_ids (Sequence[str]): All training image ids (unique).
        num_labeled (int): Size of the labeled subset, in ``[1, len(ids)]``.
        seed (int): Random seed.

    Returns:
        tuple[list[str], list[str]]: Sorted labeled and unlabeled ids;
        disjoint, their union is ``image_ids``.
    """
    ids = sorted(image_ids)
    _check_unique(ids, 'image_ids')
    if isinstance(num_labeled, bool) or not isinstance(num_labeled, int) \
            or not 1 <= num_labeled <= len(ids):
        raise ValueError(f'num_labeled must be an int in [1, {len(ids)}] (the number of '
                         f'image_ids), got {num_labeled!r}')
    labeled = set(random.Random(seed).sample(ids, num_labeled))
    return sorted(labeled), [i for i in ids if i not in labeled]


def write_id_list(path: str, ids: Iterable[str]) -> None:
    """Write ids one per line (MMSeg ``ann_file`` format: no comments)."""
    ids = list(ids)
    for i in ids:
        if not i or i != i.strip() or any(c.isspace() for c in i):
            raise ValueError(f'cannot write id {i!r} to {path}: ids must be non-empty and '
                             'contain no whitespace')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{i}\n' for i in ids)


def write_split(out_dir: str,
                labeled: Sequence[str],
                unlabeled: Sequence[str],
                sources: Optional[Dict[str, Sequence[str]]] = None) -> List[str]:
    """Write ``labeled.txt`` and ``unlabeled.txt`` into ``out_dir``.

    Args:
        out_dir (str): Output directory (created if needed).
        labeled (Sequence[str]): Labeled ids.
        unlabeled (Sequence[str]): Unlabeled ids, disjoint from ``labeled``.
        sources (dict[str, Sequence[str]], optional): Training ids per source
            ann file (:func:`train_id_sources`). With more than one source,
            ``labeled_<source>.txt`` is written too: the labeled ids of each
            source, for configs that read each source's labels from its own
            directory (``voc_aug``).

    Returns:
        list[str]: Paths written, ``labeled.txt`` and ``unlabeled.txt`` first.
    """
    _check_unique(labeled, 'labeled')
    _check_unique(unlabeled, 'unlabeled')
    overlap = sorted(set(labeled) & set(unlabeled))
    if overlap:
        raise ValueError(f'{len(overlap)} ids are both labeled and unlabeled, e.g. '
                         f'{overlap[:10]}')
    files = {'labeled.txt': list(labeled), 'unlabeled.txt': list(unlabeled)}
    if sources is not None and len(sources) > 1:
        labeled_set = set(labeled)
        for name, ids in sources.items():
            files[f'labeled_{name}.txt'] = [i for i in ids if i in labeled_set]
        covered = sum(len(v) for k, v in files.items() if k.startswith('labeled_'))
        if covered != len(labeled_set):
            raise ValueError(f'sources {sorted(sources)} must hold every labeled id exactly '
                             f'once: {covered} hits for {len(labeled_set)} labeled ids')
    paths = []
    for name, ids in files.items():
        paths.append(osp.join(out_dir, name))
        write_id_list(paths[-1], ids)
    return paths


def _token_to_id(token: str, img_prefix: str, img_suffix: str, where: str) -> str:
    """Image id from the first token of a split-file line (id or image path)."""
    if img_suffix and token.endswith(img_suffix):
        path = token.lstrip('/')
        prefix = img_prefix.strip('/') + '/' if img_prefix.strip('/') else ''
        if prefix and not path.startswith(prefix):
            raise ValueError(f'{where}: image path {token!r} is not under {prefix!r}')
        image_id = path[len(prefix):len(path) - len(img_suffix)]
    elif token.lower().endswith(_IMAGE_EXTENSIONS):
        raise ValueError(f'{where}: {token!r} looks like an image path but does not end with '
                         f'the image suffix {img_suffix!r}')
    else:
        image_id = token
    if not image_id or image_id.startswith('/') or '..' in image_id.split('/'):
        raise ValueError(f'{where}: {token!r} does not give a valid image id')
    return image_id


def read_split_file(path: str, img_prefix: str = '', img_suffix: str = '') -> List[str]:
    """Read a list of image ids, as published with later papers.

    Accepted lines (leading/trailing whitespace ignored):

    * blank lines and ``#`` comments: skipped;
    * ``<id>``: one image id per line (MMSeg ``ann_file`` format);
    * ``<image path> [<label path>]`` (U2PL / original AEL lists, e.g.
      ``leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
      gtFine/...``): the first token, if it ends with ``img_suffix``, is an
      image path; it must lie under ``img_prefix`` and is converted to the id
      (``aachen/aachen_000000_000019``).

    Args:
        path (str): The list file.
        img_prefix (str): Image directory relative to the data root, as it
            appears in path-style lines (``'leftImg8bit/train'``).
        img_suffix (str): Image suffix (``'_leftImg8bit.png'``, ``'.jpg'``).

    Returns:
        list[str]: Ids in file order.

    Raises:
        ValueError: Naming the file and line number for malformed lines
            (more than two tokens, a wrong suffix or directory) and for
            duplicates (with the line of the first occurrence), or when the
            file lists no id.
    """
    ids: List[str] = []
    first_line: Dict[str, int] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith('#'):
                continue
            where = f'{path}, line {lineno}'
            tokens = line.split()
            if len(tokens) > 2:
                raise ValueError(f'{where}: expected "<id>" or "<image path> <label path>", '
                                 f'got {len(tokens)} fields: {line!r}')
            image_id = _token_to_id(tokens[0], img_prefix, img_suffix, where)
            if image_id in first_line:
                raise ValueError(f'{where}: duplicate image id {image_id!r} (first listed on '
                                 f'line {first_line[image_id]})')
            first_line[image_id] = lineno
            ids.append(image_id)
    if not ids:
        raise ValueError(f'{path}: lists no image id')
    return ids


def list_image_ids(img_dir: str, img_suffix: str) -> List[str]:
    """All image ids under ``img_dir``, the way MMSeg's ``BaseSegDataset`` sees them.

    Mirrors ``BaseSegDataset.load_data_list`` without an ``ann_file``
    (mmengine's ``list_dir_or_file``): recursive listing, following symbolic
    links, of the non-hidden files ending with ``img_suffix``; the id is the
    path relative to ``img_dir`` without the suffix, with ``/`` separators.

    Returns:
        list[str]: Sorted ids.
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'image directory {img_dir} does not exist')
    ids = []
    for root, _, files in os.walk(img_dir, followlinks=True):
        for name in files:
            # mmengine's LocalBackend skips hidden files (but not hidden directories)
            if name.endswith(img_suffix) and not name.startswith('.') \
                    and len(name) > len(img_suffix):
                rel = osp.relpath(osp.join(root, name), img_dir)
                ids.append(rel[:-len(img_suffix)].replace(os.sep, '/'))
    return sorted(ids)


def check_split_images(ids: Iterable[str], img_dir: str, img_suffix: str) -> None:
    """Raise ``FileNotFoundError`` naming the ids whose image is missing.

    Checks ``img_dir/<id><img_suffix>`` for every id; the message names the
    first 10 missing images and how many are missing in all.
    """
    ids = list(ids)
    missing = [i for i in ids if not osp.isfile(osp.join(img_dir, i + img_suffix))]
    if missing:
        shown = ', '.join(osp.join(img_dir, i + img_suffix) for i in missing[:10])
        more = f' (and {len(missing) - 10} more)' if len(missing) > 10 else ''
        raise FileNotFoundError(f'{len(missing)} of {len(ids)} listed images are missing '
                                f'under {img_dir}: {shown}{more}')


def train_id_sources(dataset: str, data_root: str) -> Dict[str, List[str]]:
    """Training ids of ``dataset`` (a key of :data:`DATASETS`), by source list.

    Cityscapes: every image under ``leftImg8bit/train`` (one source, keyed
    ``'train'``). VOC: the ids of each ``train_lists`` ann file, keyed by its
    stem (``'train'``, ``'aug'``); an id listed by two files belongs to the
    first. Every listed image is checked to exist. The sources matter for
    ``voc_aug``: mmseg reads ``train.txt`` labels from ``SegmentationClass``
    and ``aug.txt`` labels from ``SegmentationClassAug``, so a labeled split
    over their union needs one dataset per source.

    Returns:
        dict[str, list[str]]: Sorted, unique, pairwise disjoint ids per source.
    """
    if dataset not in DATASETS:
        raise ValueError(f'dataset must be one of {sorted(DATASETS)}, got {dataset!r}')
    spec = DATASETS[dataset]
    img_dir = osp.join(data_root, spec['img_dir'])
    if spec['train_lists'] is None:
        ids = list_image_ids(img_dir, spec['img_suffix'])
        if not ids:
            raise FileNotFoundError(f'no *{spec["img_suffix"]} image under {img_dir}')
        return {'train': ids}
    sources: Dict[str, List[str]] = {}
    seen: set = set()
    for rel in spec['train_lists']:
        list_file = osp.join(data_root, rel)
        if not osp.isfile(list_file):
            raise FileNotFoundError(f'{list_file} does not exist (needed for {dataset!r}; see '
                                    "mmseg's docs/en/user_guides/2_dataset_prepare.md)")
        ids = read_split_file(list_file, spec['img_dir'], spec['img_suffix'])
        check_split_images(ids, img_dir, spec['img_suffix'])
        sources[osp.splitext(osp.basename(rel))[0]] = sorted(set(ids) - seen)
        seen.update(ids)
    return sources


def train_image_ids(dataset: str, data_root: str) -> List[str]:
    """All training ids of ``dataset`` (union of :func:`train_id_sources`), sorted."""
    return sorted(i for ids in train_id_sources(dataset, data_root).values() for i in ids)
