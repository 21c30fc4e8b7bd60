"""MMSeg's plain dataset layout: checks and labeled-pixel class frequencies.

The layout MMSeg's ``BaseSegDataset`` reads without an ``ann_file`` (its
"customize datasets" guide)::

    data_root/img_dir/{train,val}/<id><img_suffix>
    data_root/ann_dir/{train,val}/<id><seg_map_suffix>

Masks are single-channel class-index maps (grey or palette PNG), values in
``[0, num_classes)`` or the ignore index. Everything MMSeg would only find out
in a data-loader worker halfway through training (or never: the stock
``IoUMetric`` silently drops label values >= the class count) is checked here,
once, before training: images without a mask, masks whose size differs from
their image's, colour (RGB) masks, values outside the classes.

:func:`class_frequency_report` ranks the classes by their share of the
labeled pixels, as AEL's Fig. 1 ranks Cityscapes, and names the *tail*: the
rarest classes that together hold at most a chosen share of those pixels.
``PerClassIoUMetric(tail_classes_file=...)`` reads the JSON file that
:func:`write_class_frequencies` writes.
"""
import json
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .splits import list_image_ids

#: Image and mask folders of the plain layout, below the data root.
PLAIN_IMG_DIR = 'img_dir'
PLAIN_ANN_DIR = 'ann_dir'
#: Name of the per-fold class-frequency file written beside ``labeled.txt``.
CLASS_FREQUENCY_FILE = 'class_frequencies.json'
#: Format version of that file.
CLASS_FREQUENCY_FORMAT = 1
# EXIF orientations that swap width and height (mmcv's cv2 loader applies them).
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
_SHOWN = 10  # problems named per error message


def plain_dirs(data_root: str, split: str) -> Tuple[str, str]:
    """``(img_dir/<split>, ann_dir/<split>)`` under ``data_root``."""
    return osp.join(data_root, PLAIN_IMG_DIR, split), osp.join(data_root, PLAIN_ANN_DIR, split)


def _suffix_hint(folder: str, suffix: str) -> str:
    """Name the file suffixes that are in ``folder`` when ``suffix`` matched nothing."""
    found: Counter = Counter()
    for _, _, files in os.walk(folder, followlinks=True):
        for name in files:
            if not name.startswith('.'):
                found[osp.splitext(name)[1] or name] += 1
    if not found:
        return f'{folder} holds no file'
    listed = ', '.join(f'{ext!r} ({n})' for ext, n in found.most_common(5))
    return f'files there end with {listed}; set the suffix to match (now {suffix!r})'


def _mask_suffix_hint(ann_dir: str, image_id: str, seg_map_suffix: str) -> str:
    """Guess the mask suffix from the files named like ``image_id`` in ``ann_dir``."""
    if not osp.isdir(ann_dir):
        return f'{ann_dir} does not exist'
    folder, stem = osp.split(osp.join(ann_dir, image_id))
    if osp.isdir(folder):
        guesses = sorted(name[len(stem):] for name in os.listdir(folder)
                         if name.startswith(stem) and len(name) > len(stem))
        if guesses:
            return (f'{folder} has {stem}{guesses[0]}: is the mask suffix {guesses[0]!r} '
                    f'(now {seg_map_suffix!r})?')
    return _suffix_hint(ann_dir, seg_map_suffix)


def plain_image_ids(data_root: str, split: str, img_suffix: str) -> List[str]:
    """Ids of the images under ``img_dir/<split>``, as ``BaseSegDataset`` lists them.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image
            with ``img_suffix`` (naming the suffixes it does hold).
    """
    img_dir, _ = plain_dirs(data_root, split)
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'image folder {img_dir} does not exist (plain layout: '
                                f'{PLAIN_IMG_DIR}/{{train,val}}, {PLAIN_ANN_DIR}/{{train,val}})')
    ids = list_image_ids(img_dir, img_suffix)
    if not ids:
        raise FileNotFoundError(f'no *{img_suffix} image under {img_dir}: '
                                f'{_suffix_hint(img_dir, img_suffix)}')
    return ids


def check_masks_exist(data_root: str, split: str, ids: Sequence[str], img_suffix: str,
                      seg_map_suffix: str) -> None:
    """Raise ``FileNotFoundError`` naming the images of ``ids`` that have no mask."""
    img_dir, ann_dir = plain_dirs(data_root, split)
    missing = [i for i in ids if not osp.isfile(osp.join(ann_dir, i + seg_map_suffix))]
    if not missing:
        return
    shown = ', '.join(f'{osp.join(img_dir, i + img_suffix)} (expected '
                      f'{osp.join(ann_dir, i + seg_map_suffix)})' for i in missing[:_SHOWN])
    more = f' (and {len(missing) - _SHOWN} more)' if len(missing) > _SHOWN else ''
    hint = _mask_suffix_hint(ann_dir, missing[0], seg_map_suffix)
    raise FileNotFoundError(f'{len(missing)} of {len(ids)} images have no mask: {shown}{more}. '
                            f'{hint}. Images without masks can only be unlabeled: list the '
                            'labeled ones with --import')


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as MMSeg loads it (EXIF orientation applied).

    Reads only the header. mmcv's default (cv2) loader rotates JPEGs by their
    EXIF orientation tag, so a portrait photo stored landscape has its width
    and height swapped; the mask, a PNG, is not rotated.
    """
    with Image.open(path) as img:
        width, height = img.size
        orientation = img.getexif().get(0x0112)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def read_label_map(path: str) -> np.ndarray:
    """A mask as MMSeg's ``LoadAnnotations`` reads it: an (H, W) uint8 class-index map.

    Raises:
        ValueError: For a colour mask (RGB/RGBA, which ``LoadAnnotations``
            would keep as (H, W, 3)) or 16-bit values above 255 (which it would
            wrap around when it casts to uint8), naming the file.
    """
    with Image.open(path) as img:
        mode = img.mode
        label = np.asarray(img)
    if label.ndim != 2:
        raise ValueError(f'mask {path} is a {mode} image with {label.shape[-1]} channels; '
                         'MMSeg reads class indices from a single-channel mask (grey "L" or '
                         'palette "P" PNG with one class id per pixel). Convert colour masks '
                         'to class ids first')
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > 255):
            big = np.unique(label[(label < 0) | (label > 255)])
            raise ValueError(f'mask {path} ({mode}) has values {big[:_SHOWN].tolist()} outside '
                             '[0, 255]; MMSeg casts masks to uint8')
        label = label.astype(np.uint8)
    return label


def label_counts(label: np.ndarray, num_classes: int, ignore_index: int = 255,
                 reduce_zero_label: bool = False) -> Tuple[np.ndarray, List[int]]:
    """Pixels per class of one mask, and its values that are no class.

    Args:
        label (np.ndarray): (H, W) uint8 class-index map.
        num_classes (int): Number of classes.
        ignore_index (int): Value that is no class.
        reduce_zero_label (bool): Map 0 to ``ignore_index`` and v to v - 1
            first, as ``LoadAnnotations(reduce_zero_label=True)``.

    Returns:
        tuple[np.ndarray, list[int]]: int64 counts (num_classes,) and the
        sorted values (as stored in the file) that are neither a class nor
        ignored.
    """
    histogram = np.bincount(label.ravel(), minlength=256)  # uint8: faster than np.unique
    values = np.flatnonzero(histogram)
    counts = histogram[values]
    classes = values.astype(np.int64)
    if reduce_zero_label:  # LoadAnnotations: 0 -> 255, 255 stays 255, v -> v - 1
        classes = np.where((values == 0) | (values == 255), 255, classes - 1)
    valid = (classes >= 0) & (classes < num_classes) & (classes != ignore_index)
    bad = values[~valid & (classes != ignore_index)]
    per_class = np.zeros(num_classes, np.int64)
    np.add.at(per_class, classes[valid], counts[valid])
    return per_class, bad.astype(int).tolist()


def _raise_problems(problems: List[str], what: str, total: int, fix: str) -> None:
    if problems:
        shown = '; '.join(problems[:_SHOWN])
        more = f' (and {len(problems) - _SHOWN} more)' if len(problems) > _SHOWN else ''
        raise ValueError(f'{len(problems)} of {total} masks {what}: {shown}{more}. {fix}')


def scan_label_maps(data_root: str,
                    split: str,
                    ids: Sequence[str],
                    img_suffix: str,
                    seg_map_suffix: str,
                    classes: Sequence[str],
                    ignore_index: int = 255,
                    reduce_zero_label: bool = False) -> Dict[str, np.ndarray]:
    """Check the masks of ``ids`` and count their pixels per class.

    Every mask must exist, be a single-channel map of the size of its image
    (after the image's EXIF orientation) and hold only class ids and
    ``ignore_index``.

    Returns:
        dict[str, np.ndarray]: Pixels per class (num_classes,) of each id.

    Raises:
        FileNotFoundError: Images without a mask (named).
        ValueError: Masks of another size or with values that are no class
            (each named with its values / both sizes), colour masks.
    """
    check_masks_exist(data_root, split, ids, img_suffix, seg_map_suffix)
    img_dir, ann_dir = plain_dirs(data_root, split)
    num_classes = len(classes)
    counts, bad_size, bad_values = {}, [], []
    for i in ids:
        mask_path = osp.join(ann_dir, i + seg_map_suffix)
        label = read_label_map(mask_path)
        img_w, img_h = image_size(osp.join(img_dir, i + img_suffix))
        if label.shape != (img_h, img_w):
            bad_size.append(f'{mask_path} is {label.shape[1]}x{label.shape[0]}, its image '
                            f'{osp.join(img_dir, i + img_suffix)} {img_w}x{img_h}')
        counts[i], bad = label_counts(label, num_classes, ignore_index, reduce_zero_label)
        if bad:
            bad_values.append(f'{mask_path}: {bad[:_SHOWN]}')
    _raise_problems(bad_size, 'differ in size (width x height) from their image', len(ids),
                    'MMSeg needs a mask of exactly the size of its image (for JPEGs, after '
                    'their EXIF orientation, which the loader applies)')
    zero = ' after reduce_zero_label (0 -> ignored, v -> v-1)' if reduce_zero_label else ''
    _raise_problems(bad_values, f'hold values{zero} outside [0, {num_classes}) that are not '
                    f'ignore_index={ignore_index}', len(ids),
                    f'The {num_classes} classes are {list(classes)}; relabel those pixels, '
                    'or add the missing classes')
    return counts


def _ranked(totals: np.ndarray) -> List[int]:
    """Class ids from the rarest to the most frequent (ties by id)."""
    return sorted(range(len(totals)), key=lambda c: (int(totals[c]), c))


def select_tail_classes(totals: Sequence[int], tail_share: float) -> List[int]:
    """The rarest classes that together hold at most ``tail_share`` of the pixels.

    Classes are taken from the rarest up while the running share stays
    within ``tail_share``; the rarest class is always taken, so the tail is
    never empty.

    Args:
        totals (Sequence[int]): Labeled pixels per class.
        tail_share (float): Share of the labeled pixels, in (0, 1).

    Returns:
        list[int]: Tail class ids, rarest first.
    """
    if not 0 < tail_share < 1:
        raise ValueError(f'tail_share must be in (0, 1), got {tail_share!r}')
    totals = np.asarray(totals, np.int64)
    total = max(int(totals.sum()), 1)
    tail, running = [], 0
    for c in _ranked(totals):
        running += int(totals[c])
        if tail and running > tail_share * total:
            break
        tail.append(c)
    return tail


def class_frequency_report(ids: Sequence[str], counts: Dict[str, np.ndarray],
                           classes: Sequence[str], tail_share: float) -> dict:
    """Per-class pixel frequencies of a labeled split and its tail classes.

    Args:
        ids (Sequence[str]): The labeled ids.
        counts (dict[str, np.ndarray]): Pixels per class of each id
            (:func:`scan_label_maps`).
        classes (Sequence[str]): Class names.
        tail_share (float): See :func:`select_tail_classes`.

    Returns:
        dict: The content of ``class_frequencies.json``: ``classes``,
        ``num_images``, ``labeled_pixels``, ``tail_share``, per class
        (``id``, ``name``, ``pixels``, ``share``, ``images``: labeled images
        holding it, ``area_when_present``: the mean share of such an image's
        labeled pixels it covers) in id order, ``rank`` (names, rarest first),
        ``tail_classes`` (names, rarest first) and ``absent_classes``
        (names without a labeled pixel).

    Raises:
        ValueError: If the split has no image or no labeled (non-ignored)
            pixel.
    """
    if not ids:
        raise ValueError('the labeled split is empty')
    stack = np.stack([counts[i] for i in ids])
    totals = stack.sum(0)
    total = int(totals.sum())
    if total == 0:
        raise ValueError(f'the {len(ids)} labeled masks hold no class pixel (every pixel is '
                         'ignored): nothing to learn from')
    # Share of an image's labeled pixels a class covers, averaged over the
    # images that hold it: what ACM's presence / component thresholds compare.
    image_pixels = np.maximum(stack.sum(1, keepdims=True), 1)
    present = stack > 0
    area = (stack / image_pixels).sum(0) / np.maximum(present.sum(0), 1)
    per_class = [
        dict(id=c, name=name, pixels=int(totals[c]), share=round(float(totals[c]) / total, 8),
             images=int(present[:, c].sum()), area_when_present=round(float(area[c]), 8))
        for c, name in enumerate(classes)
    ]
    return dict(
        format=CLASS_FREQUENCY_FORMAT,
        classes=list(classes),
        num_images=len(ids),
        labeled_pixels=total,
        tail_share=tail_share,
        per_class=per_class,
        rank=[classes[c] for c in _ranked(totals)],
        tail_classes=[classes[c] for c in select_tail_classes(totals, tail_share)],
        absent_classes=[classes[c] for c in range(len(classes)) if totals[c] == 0])


def write_class_frequencies(path: str, report: dict) -> None:
    """Write a :func:`class_frequency_report` as JSON."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
        f.write('\n')


def read_class_frequencies(path: str) -> dict:
    """Read a ``class_frequencies.json`` and check its structure.

    Returns:
        dict: The report; at least ``classes`` and ``tail_classes`` (lists of
        names, the tail a non-empty subset of the classes).

    Raises:
        FileNotFoundError: If ``path`` does not exist (with how to write it).
        ValueError: If it is not such a file (naming the key).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'class frequency file {path!r} does not exist; '
                                'tools/dataset_converters/make_semi_splits.py plain writes it '
                                f'beside labeled.txt as {CLASS_FREQUENCY_FILE}')
    try:
        with open(path, encoding='utf-8') as f:
            report = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path} is not valid JSON: {error}') from None
    for key in ('classes', 'tail_classes'):
        value = report.get(key) if isinstance(report, dict) else None
        if not isinstance(value, list) or not value or \
                not all(isinstance(v, str) for v in value):
            raise ValueError(f'{path}: "{key}" must be a non-empty list of class names, got '
                             f'{value!r}')
    unknown = [name for name in report['tail_classes'] if name not in report['classes']]
    if unknown:
        raise ValueError(f'{path}: tail_classes {unknown} are not in its classes '
                         f'{report["classes"]}')
    return report


def check_classes(classes: Sequence[str], palette: Optional[Sequence] = None,
                  where: str = 'classes') -> None:
    """Refuse an empty or duplicated class list, or a palette of another length."""
    classes = list(classes)
    if not classes:
        raise ValueError(f'{where}: no class names')
    duplicated = sorted({c for c in classes if classes.count(c) > 1})
    if duplicated:
        raise ValueError(f'{where}: class names {duplicated} appear more than once')
    if palette is not None and len(palette) != len(classes):
        raise ValueError(f'{where}: {len(classes)} classes but the palette has '
                         f'{len(palette)} colours')
