"""The long-tailed toy dataset of the CPU demo: its renderer and writer.

:func:`make_longtail_toy` writes the dataset that ``LongTailToyDataset``
reads (``tools/misc/generate_longtail_toy.py`` is its command line); it is
deterministic by seed and needs no download.

Design
------
AEL is about semi-supervised segmentation when the class distribution is long
tailed (Cityscapes: ``road`` ~37% of the pixels, ``motorcycle`` ~0.07%). Every
design choice below follows from wanting that property, and nothing else, on
64x64 images that a CPU can train on:

* **Steep frequency fall-off.** Three "stuff" classes (``smooth_field``,
  ``grainy_ground``, ``striped_wall``) tile the whole image, so together they
  keep most pixels (the head: the largest alone is >30%). Three mid classes are
  larger objects present in about half the images (a few % each). Four tail
  classes are small objects (discs, thin poles, small triangles, rings), each
  present in only 20-30% of the images and covering ~0.1-0.5% of all pixels,
  the way Cityscapes' rider / motorcycle / bicycle do. With 20 labeled images a
  tail class is seen in only a handful of labeled images: the scarce-label,
  rare-class regime the paper targets.
* **Appearance is learnable but confusable.** Each class has one consistent
  recipe (a colour distribution, a texture and a shape family), but the recipes
  overlap the way real classes do, so that a classifier cannot shortcut through
  one cue: ``smooth_field`` and ``striped_wall`` share a colour and differ only
  in texture; ``grainy_ground``, ``checker_block`` and ``brown_ring`` share a
  colour and differ in texture (noise / checker / smooth) and shape;
  ``green_blob`` and ``dotted_triangle`` share a colour and differ in texture
  and scale; the tail class ``thin_pole`` is a slightly darker thin version of
  the head class ``smooth_field``. A per-pixel colour lookup is therefore far
  from perfect (the tests check a nearest-mean-colour classifier), and tail
  classes are easy to confuse with head classes, as in the paper's setting.
* **Nuisance variation** that a model has to learn to ignore, and which makes
  20 labeled images truly few: a per-image zoom scales object sizes and
  texture periods together; objects take random positions, orientations and
  sizes; every instance gets its own colour jitter; and every image gets an
  illumination change (gain, colour cast, linear shading ramp, offset) plus
  sensor noise.
* **No layout prior.** Stuff regions come from the arg-max of random smooth
  fields and objects are placed uniformly, so position tells nothing about the
  class; only appearance does. The label value 255 (ignore) is not used.

Determinism: the same seed gives the same bytes with the same numpy version on
the same platform (numpy may round transcendental functions differently on
other CPUs). Per-image random generators are seeded from
``(seed, split, index)``: image
``train_00042`` is the same whatever ``num_labeled`` / ``num_unlabeled`` are,
and the labeled split is the first ``num_labeled`` training images, so a larger
labeled split contains a smaller one (as the paper's 1/32 vs 1/16 splits).
Labels are written for the unlabeled images too, to measure pseudo-label
quality; training must never read them.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image

# Names describe what is rendered: colour / texture / shape.
LONGTAIL_TOY_CLASSES = ('smooth_field', 'grainy_ground', 'striped_wall', 'checker_block',
                        'green_blob', 'hatched_bar', 'red_disc', 'thin_pole',
                        'dotted_triangle', 'brown_ring')
# A display palette (not the rendering colours, which overlap on purpose).
LONGTAIL_TOY_PALETTE = [[70, 130, 180], [128, 64, 128], [70, 70, 70], [190, 153, 153],
                        [107, 142, 35], [250, 170, 30], [220, 20, 60], [153, 153, 153],
                        [0, 255, 0], [119, 11, 32]]
IGNORE_INDEX = 255

# Seeds of the per-image generators: one stream per split.
_SPLIT_CODES = {'train': 0, 'val': 1}

# Mean RGB of each class. Shared colours are deliberate (see the module docstring).
_FIELD_RGB = (120., 135., 170.)
_GROUND_RGB = (140., 115., 90.)
_GREEN_RGB = (85., 140., 75.)
_BAR_RGB = (165., 155., 110.)
_RED_RGB = (180., 75., 65.)
_POLE_RGB = (95., 108., 140.)

PathLike = Union[str, os.PathLike]


@dataclass
class SyntheticDatasetInfo:
    """What a generator wrote.

    Attributes:
        root (str): The dataset root.
        splits (dict[str, list[str]]): Sample ids per split, in the form of
            MMSeg ``ann_file`` lines (the image path relative to the split's
            image folder, without the image suffix).
    """
    root: str
    splits: Dict[str, List[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Small drawing helpers (all vectorised over the pixel grid)
# --------------------------------------------------------------------------- #
class _Canvas:
    """An RGB float image and its label map, painted layer by layer."""

    def __init__(self, height: int, width: int, scale: float = 1.0) -> None:
        self.height, self.width = height, width
        # Object sizes are given for 64-pixel images and multiplied by ``scale``.
        self.scale = scale
        # Pixel centres, so that shapes are symmetric about their centre.
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        self.yy, self.xx = yy + 0.5, xx + 0.5
        self.img = np.zeros((height, width, 3), np.float64)
        self.label = np.full((height, width), IGNORE_INDEX, np.uint8)

    def paint(self, mask: np.ndarray, class_id: int, rgb: np.ndarray) -> None:
        """Paint ``rgb`` ((H, W, 3) or (3,)) and ``class_id`` where ``mask``."""
        if rgb.ndim == 1:
            self.img[mask] = rgb
        else:
            self.img[mask] = rgb[mask]
        self.label[mask] = class_id


def _rotate(canvas: _Canvas, cy: float, cx: float,
            angle: float) -> Tuple[np.ndarray, np.ndarray]:
    """Coordinates (u along ``angle``, v across it) of every pixel about (cy, cx)."""
    dx, dy = canvas.xx - cx, canvas.yy - cy
    c, s = np.cos(angle), np.sin(angle)
    return dx * c + dy * s, -dx * s + dy * c


def _stripes(u: np.ndarray, period: float, phase: float) -> np.ndarray:
    """A sinusoidal grating along ``u`` in [-1, 1]."""
    return np.sin(2 * np.pi * u / period + phase)


def _checker(u: np.ndarray, v: np.ndarray, cell: float) -> np.ndarray:
    """A +-1 checkerboard with square cells of side ``cell`` in (u, v)."""
    parity = (np.floor(u / cell) + np.floor(v / cell)) % 2
    return 2.0 * parity - 1.0


def _smooth_field(canvas: _Canvas, rng: np.random.Generator, num_waves: int = 3,
                  min_cycles: float = 0.5, max_cycles: float = 2.0) -> np.ndarray:
    """A random smooth field: a sum of plane waves of 0.5-2 cycles per image."""
    size = max(canvas.height, canvas.width)
    out = np.zeros((canvas.height, canvas.width))
    for _ in range(num_waves):
        angle = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(min_cycles, max_cycles) / size
        u = canvas.xx * np.cos(angle) + canvas.yy * np.sin(angle)
        out += rng.uniform(0.5, 1.0) * np.cos(2 * np.pi * freq * u + rng.uniform(0, 2 * np.pi))
    return out / num_waves


def _jittered(rng: np.random.Generator, rgb: Sequence[float], std: float = 8.0) -> np.ndarray:
    """A per-instance colour: the class colour plus Gaussian jitter per channel."""
    return np.asarray(rgb) + rng.normal(0.0, std, 3)


def _shade(base: np.ndarray, t: np.ndarray, amplitude: float) -> np.ndarray:
    """Brightness modulation ``base + amplitude * t`` as an (H, W, 3) image."""
    return base[None, None, :] + amplitude * t[..., None]


def _convex_polygon_mask(canvas: _Canvas, points: np.ndarray) -> np.ndarray:
    """Pixels inside the convex polygon with vertices ``points`` ((K, 2), x-y, in order)."""
    pos = np.ones((canvas.height, canvas.width), bool)
    neg = np.ones_like(pos)
    for k in range(len(points)):
        (x0, y0), (x1, y1) = points[k], points[(k + 1) % len(points)]
        cross = (x1 - x0) * (canvas.yy - y0) - (y1 - y0) * (canvas.xx - x0)
        pos &= cross >= 0
        neg &= cross <= 0
    return pos | neg


def _segment_distance(canvas: _Canvas, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance of every pixel centre to the segment ``p0``-``p1`` (x-y points)."""
    d = p1 - p0
    t = ((canvas.xx - p0[0]) * d[0] + (canvas.yy - p0[1]) * d[1]) / max(float(d @ d), 1e-9)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(canvas.xx - (p0[0] + t * d[0]), canvas.yy - (p0[1] + t * d[1]))


def _random_centre(rng: np.random.Generator, canvas: _Canvas,
                   margin: float = 0.0) -> Tuple[float, float]:
    return (rng.uniform(margin, canvas.height - margin),
            rng.uniform(margin, canvas.width - margin))


# --------------------------------------------------------------------------- #
# The long-tailed toy scene: one painter per class
# --------------------------------------------------------------------------- #
def _paint_stuff(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Classes 0-2 tile the image: the arg-max of three random smooth fields."""
    # The biases set the expected shares (about 45 / 30 / 25% of the stuff).
    fields = np.stack([_smooth_field(canvas, rng) + b for b in (0.22, 0.06, 0.0)])
    region = fields.argmax(0)

    # 0 smooth_field: a slow brightness gradient, almost no texture.
    base = _jittered(rng, _FIELD_RGB)
    canvas.paint(region == 0, 0, _shade(base, _smooth_field(canvas, rng), 30.0))
    # 1 grainy_ground: per-pixel noise (grain independent of zoom, like film grain).
    base = _jittered(rng, _GROUND_RGB)
    grain = rng.normal(0.0, 1.0, (canvas.height, canvas.width))
    canvas.paint(region == 1, 1, _shade(base, grain, 26.0))
    # 2 striped_wall: same colour as smooth_field, near-horizontal stripes.
    base = _jittered(rng, _FIELD_RGB)
    u, _ = _rotate(canvas, 0, 0, np.pi / 2 + rng.uniform(-0.45, 0.45))
    stripes = _stripes(u, rng.uniform(5.0, 7.0) * zoom, rng.uniform(0, 2 * np.pi))
    canvas.paint(region == 2, 2, _shade(base, stripes, 30.0))


def _paint_checker_block(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 3: rotated rectangles with a checker texture, in the ground colour."""
    for _ in range(rng.choice(3, p=[0.4, 0.4, 0.2])):
        cy, cx = _random_centre(rng, canvas)
        h, w = rng.uniform(8, 18, 2) * zoom * canvas.scale
        u, v = _rotate(canvas, cy, cx, rng.uniform(0, np.pi))
        mask = (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)
        texture = _checker(u, v, rng.uniform(3.0, 4.0) * zoom)
        canvas.paint(mask, 3, _shade(_jittered(rng, _GROUND_RGB), texture, 30.0))


def _paint_green_blob(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 4: smooth wobbly ellipses, brighter in the middle."""
    for _ in range(rng.choice(3, p=[0.45, 0.4, 0.15])):
        cy, cx = _random_centre(rng, canvas)
        ry, rx = rng.uniform(4, 10, 2) * zoom * canvas.scale
        u, v = _rotate(canvas, cy, cx, rng.uniform(0, np.pi))
        theta = np.arctan2(v, u)
        wobble = 1 + 0.15 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi))
        r = np.hypot(u / rx, v / ry)
        mask = r <= wobble
        canvas.paint(mask, 4, _shade(_jittered(rng, _GREEN_RGB), 1 - 2 * np.clip(r, 0, 1), 18.0))


def _paint_hatched_bar(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 5: thick straight bars hatched across their length."""
    for _ in range(rng.choice(3, p=[0.5, 0.35, 0.15])):
        cy, cx = _random_centre(rng, canvas)
        length = rng.uniform(18, 40) * zoom * canvas.scale
        width = rng.uniform(4, 6.5) * zoom * canvas.scale
        angle = rng.uniform(0, np.pi)
        u, v = _rotate(canvas, cy, cx, angle)
        mask = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
        texture = _stripes(u, rng.uniform(3.5, 4.5) * zoom, rng.uniform(0, 2 * np.pi))
        canvas.paint(mask, 5, _shade(_jittered(rng, _BAR_RGB), texture, 35.0))


def _paint_red_disc(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 6 (tail): small smooth discs with a highlight."""
    if rng.random() >= 0.3:
        return
    for _ in range(rng.integers(1, 3, endpoint=True)):
        cy, cx = _random_centre(rng, canvas, margin=3)
        radius = rng.uniform(1.6, 3.2) * zoom * canvas.scale
        r = np.hypot(canvas.yy - cy, canvas.xx - cx) / radius
        canvas.paint(r <= 1, 6, _shade(_jittered(rng, _RED_RGB), 1 - 2 * np.clip(r, 0, 1), 20.0))


def _paint_thin_pole(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 7 (tail): thin near-vertical poles, a darker ``smooth_field`` colour."""
    if rng.random() >= 0.3:
        return
    for _ in range(rng.integers(1, 2, endpoint=True)):
        cy, cx = _random_centre(rng, canvas, margin=4)
        half = rng.uniform(5, 12) * zoom * canvas.scale
        angle = np.pi / 2 + rng.uniform(-0.25, 0.25)
        d = half * np.array([np.cos(angle), np.sin(angle)])
        p = np.array([cx, cy])
        # Half-width 0.7-1.1 px: one to two pixels wide whatever the zoom.
        mask = _segment_distance(canvas, p - d, p + d) <= rng.uniform(0.7, 1.1) * canvas.scale
        canvas.paint(mask, 7, _jittered(rng, _POLE_RGB, std=6.0))


def _paint_dotted_triangle(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 8 (tail): small triangles in the ``green_blob`` colour, with bright dots."""
    if rng.random() >= 0.25:
        return
    for _ in range(rng.integers(1, 2, endpoint=True)):
        cy, cx = _random_centre(rng, canvas, margin=4)
        radius = rng.uniform(3.5, 6.0) * zoom * canvas.scale
        angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
        angles = angles + rng.uniform(-0.3, 0.3, 3)
        points = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1)
        mask = _convex_polygon_mask(canvas, points)
        u, v = _rotate(canvas, cy, cx, rng.uniform(0, np.pi))
        period = 3.0 * zoom
        dist = np.hypot((u % period) - period / 2, (v % period) - period / 2)
        dots = (dist <= 0.35 * period).astype(np.float64)
        canvas.paint(mask, 8, _shade(_jittered(rng, _GREEN_RGB), 2 * dots - 1, 25.0))


def _paint_brown_ring(canvas: _Canvas, rng: np.random.Generator, zoom: float) -> None:
    """Class 9 (tail): small smooth rings in the ``grainy_ground`` colour."""
    if rng.random() >= 0.2:
        return
    cy, cx = _random_centre(rng, canvas, margin=4)
    outer = rng.uniform(3.0, 5.0) * zoom * canvas.scale
    width = rng.uniform(1.3, 2.0) * canvas.scale
    r = np.hypot(canvas.yy - cy, canvas.xx - cx)
    mask = (r <= outer) & (r >= outer - width)
    canvas.paint(mask, 9, _jittered(rng, _GROUND_RGB, std=6.0))


# Painting order is occlusion order: the small tail objects come last, on top.
_PAINTERS: Tuple[Callable[[_Canvas, np.random.Generator, float], None], ...] = (
    _paint_stuff, _paint_checker_block, _paint_green_blob, _paint_hatched_bar,
    _paint_red_disc, _paint_thin_pole, _paint_dotted_triangle, _paint_brown_ring)


def _apply_camera(canvas: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Per-image illumination (gain, colour cast, shading ramp, offset) and noise."""
    size = max(canvas.height, canvas.width)
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.92, 1.08, 3)
    ramp = (rng.uniform(-0.25, 0.25) * (canvas.xx / size - 0.5)
            + rng.uniform(-0.25, 0.25) * (canvas.yy / size - 0.5))
    img = canvas.img * gain[None, None, :] * (1 + ramp[..., None]) + rng.uniform(-15, 15)
    img += rng.normal(0.0, rng.uniform(3.0, 8.0), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_longtail_toy_sample(rng: np.random.Generator,
                               size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """Render one image of the long-tailed toy dataset.

    Args:
        rng (np.random.Generator): The image's own random generator.
        size (int): Side of the square image in pixels (>= 16). Object sizes
            scale with ``size / 64``; texture periods are in pixels.

    Returns:
        tuple[np.ndarray, np.ndarray]: The RGB image (size, size, 3) uint8 and
        its label map (size, size) uint8 with values in
        ``[0, len(LONGTAIL_TOY_CLASSES))``.
    """
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f'size must be an int >= 16, got {size!r}')
    canvas = _Canvas(int(size), int(size), scale=size / 64.0)
    # Camera distance: object sizes and texture periods scale together.
    zoom = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))
    for painter in _PAINTERS:
        painter(canvas, rng, zoom)
    return _apply_camera(canvas, rng), canvas.label


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of the split sizes."""
    return np.random.default_rng([seed, _SPLIT_CODES[split], index])


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')


def _write_lines(path: str, lines: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(line + '\n' for line in lines)


def _save_png(path: str, array: np.ndarray) -> None:
    # PIL writes the same bytes for the same array, which the seed tests rely on.
    Image.fromarray(array).save(path, format='PNG')


def make_longtail_toy(root: PathLike,
                      num_labeled: int = 20,
                      num_unlabeled: int = 400,
                      num_val: int = 100,
                      size: int = 64,
                      seed: int = 0) -> SyntheticDatasetInfo:
    """Write the long-tailed toy dataset (see the module docstring for its design).

    Layout (MMSeg's, with split files for the semi-supervised split)::

        root/img_dir/{train,val}/<id>.png    RGB images
        root/ann_dir/{train,val}/<id>.png    uint8 label maps (0..9)
        root/splits/labeled.txt              the first ``num_labeled`` train ids
        root/splits/unlabeled.txt            the other train ids
        root/splits/val.txt                  the val ids

    Existing files of the same names are overwritten; other files are left
    alone, so the split files, not the folder contents, define the splits.

    Args:
        root (str | PathLike): Dataset root, created if missing.
        num_labeled (int): Labeled training images (>= 1).
        num_unlabeled (int): Unlabeled training images (>= 0). Their labels are
            written too (to score pseudo-labels), but must not be trained on.
        num_val (int): Validation images (>= 0).
        size (int): Image side in pixels (>= 16).
        seed (int): Seed of the whole dataset (>= 0).

    Returns:
        SyntheticDatasetInfo: ids per split ``labeled``, ``unlabeled``, ``val``.
    """
    _check_count('num_labeled', num_labeled, 1)
    _check_count('num_unlabeled', num_unlabeled, 0)
    _check_count('num_val', num_val, 0)
    _check_count('size', size, 16)
    _check_count('seed', seed, 0)
    root = os.fspath(root)
    ids = {'train': [f'train_{i:05d}' for i in range(num_labeled + num_unlabeled)],
           'val': [f'val_{i:05d}' for i in range(num_val)]}
    for split, split_ids in ids.items():
        img_dir = osp.join(root, 'img_dir', split)
        ann_dir = osp.join(root, 'ann_dir', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for index, sample_id in enumerate(split_ids):
            img, label = render_longtail_toy_sample(_image_rng(seed, split, index), size)
            _save_png(osp.join(img_dir, sample_id + '.png'), img)
            _save_png(osp.join(ann_dir, sample_id + '.png'), label)
    splits = {'labeled': ids['train'][:num_labeled],
              'unlabeled': ids['train'][num_labeled:],
              'val': ids['val']}
    for name, split_ids in splits.items():
        _write_lines(osp.join(root, 'splits', f'{name}.txt'), split_ids)
    return SyntheticDatasetInfo(root=root, splits=splits)


def class_pixel_frequencies(label_maps: Sequence[np.ndarray], num_classes: int,
                            ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Fraction of the non-ignored pixels of each class.

    Args:
        label_maps (Sequence[np.ndarray]): Label maps of any shapes.
        num_classes (int): Number of classes.
        ignore_index (int): Label value left out of the count.

    Returns:
        np.ndarray: (num_classes,) float64 frequencies (summing to 1 unless
        there are no valid pixels).
    """
    counts = np.zeros(num_classes, np.int64)
    for label in label_maps:
        valid = label[label != ignore_index].ravel()
        if valid.size and valid.max() >= num_classes:
            raise ValueError(f'label_maps hold value {valid.max()} >= num_classes={num_classes}')
        counts += np.bincount(valid, minlength=num_classes)
    return counts / max(int(counts.sum()), 1)


def read_label_maps(root: PathLike, split_file: str, ann_dir: str,
                    suffix: str = '.png') -> List[np.ndarray]:
    """Read the label maps of the ids listed in ``root/split_file`` from ``root/ann_dir``."""
    root = os.fspath(root)
    with open(osp.join(root, split_file)) as f:
        ids = [line.strip() for line in f if line.strip()]
    return [np.asarray(Image.open(osp.join(root, ann_dir, i + suffix))) for i in ids]
