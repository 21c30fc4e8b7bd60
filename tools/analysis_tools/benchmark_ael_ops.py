"""Time the AEL operations of one training step: ours vs. the original's style.

Times the AEL-specific work of a Cityscapes-shaped step (19 classes, 2 labeled
images and one unlabeled target/source pair at 769 x 769) with the project's
modules: confidence-bank update, ACM presence table, ACM box + mix, AEL loss,
Adaptive Copy-Paste and the sampling distributions. Network forwards, the
teacher softmax and the data pipeline are not timed. Beside each, an
*original-style reference* (our short re-statement of hzhupku/SemiSeg-AEL's
per-class loops, ``torch.unique`` and host-side connected components) runs on
the same tensors in the same run. Teacher/student outputs are smooth random
fields (blob-like argmax). Figures are medians of ``--repeats`` rounds (each
round runs every op once, interleaved) after warm-up, with
``torch.cuda.synchronize`` around each op on CUDA.

    python tools/analysis_tools/benchmark_ael_ops.py [--device cuda] [--repeats 10] \
        [--size 769] [--num-classes 19] [--threads N]
"""
import argparse
import importlib.util
import random
import statistics
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import Tensor

import ael_mmseg  # noqa: F401  (registers the AEL modules)
from ael_mmseg.datasets.samplers import ACMSourceState
from ael_mmseg.models.utils import (ConfidenceBank, acm_class_probabilities,
                                    acp_class_probabilities, aes_sampling_rates)

NUM_UNLABELED = 2975  # Cityscapes train images: the presence table's width
EXCLUDED = [0, 1, 2, 8, 10]  # Cityscapes "stuff" classes, never pasted by ACP
COMP_THRESH, PRESENCE_THRESH, K_ACP = 0.005, 0.01, 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the AEL operations of one step')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=10, help='timed runs per operation')
    parser.add_argument('--size', type=int, default=769, help='crop side')
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--loss-resolution', choices=('input', 'logits'), default='input',
                        help="ours only: 'logits' runs the bank statistics and the loss on "
                        "the decode head's 1/4 grid (semi_train_cfg.loss_resolution)")
    return parser.parse_args()


def time_interleaved(groups: List[Dict[str, Callable[[], object]]], device: torch.device,
                     repeats: int, warmup: int = 2) -> List[Dict[str, float]]:
    """Median wall time in ms of every op, after ``warmup`` untimed rounds.

    Each round runs every op of every group once, so ours and the reference
    see the same background load.
    """
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    times: List[Dict[str, List[float]]] = [{key: [] for key in ops} for ops in groups]
    for i in range(warmup + repeats):
        for ops, record in zip(groups, times):
            for key, fn in ops.items():
                sync()
                start = time.perf_counter()
                fn()
                sync()
                if i >= warmup:
                    record[key].append((time.perf_counter() - start) * 1e3)
    return [{key: statistics.median(v) for key, v in record.items()} for record in times]


def smooth_logits(num: int, num_classes: int, size: int, device: torch.device,
                  scale: float = 6.0, cells: int = 12) -> Tensor:
    """(N, C, size, size) logits whose argmax forms blobs (bicubic-upsampled noise)."""
    low = torch.randn(num, num_classes, cells, cells) * scale
    low += torch.linspace(1.0, -1.0, num_classes).view(1, -1, 1, 1)  # mildly long-tailed
    return F.interpolate(low, size=(size, size), mode='bicubic').to(device)


def make_inputs(size: int, num_classes: int, device: torch.device) -> Dict[str, Tensor]:
    """Labeled batch of 2, paste sources for ACP, teacher outputs on the pair."""
    gt = smooth_logits(2, num_classes, size, device).argmax(1)
    gt[:, :size // 20] = 255  # an ignored band, as in padded crops
    teacher = smooth_logits(2, num_classes, size, device)  # unlabeled target, source
    conf, pred = F.softmax(teacher, dim=1).max(1)
    sup_conf, sup_pred = F.softmax(smooth_logits(2, num_classes, size, device), 1).max(1)
    images = torch.randn(6, 3, size, size, device=device)
    return dict(images=images[:2], paste_images=images[2:4], unsup_images=images[4:], gt=gt,
                paste_labels=smooth_logits(2, num_classes, size, device).argmax(1),
                student=smooth_logits(3, num_classes, size, device, scale=3.0),
                teacher=teacher, pred=pred, conf=conf, pseudo=torch.cat([sup_pred, pred[:1]]),
                pseudo_conf=torch.cat([sup_conf, conf[:1]]))


def acm_class(source_pred: Tensor, num_classes: int) -> int:
    """A mid-frequency class present in the source prediction (median area)."""
    areas = torch.bincount(source_pred.flatten().cpu(), minlength=num_classes)
    present = torch.nonzero(areas >= PRESENCE_THRESH * source_pred.numel()).flatten()
    return int(present[areas[present].argsort()[len(present) // 2]])


# --------------------------------------------------------- original-style reference
# Short re-statements of hzhupku/SemiSeg-AEL's behaviour (semseg/utils/utils.py,
# semseg/utils/loss_helper.py, train.py), written for this benchmark.
CCFunc = Callable[[np.ndarray], Tuple[List[Tuple[int, ...]], np.ndarray]]


def cc_backend() -> Tuple[str, CCFunc]:
    """Host 8-connected components: mask -> (boxes (y0, x0, y1, x1) per label, label map)."""
    if importlib.util.find_spec('skimage'):
        from skimage.measure import label, regionprops
        return 'skimage.measure.label+regionprops', lambda mask: (
            [p.bbox for p in regionprops(label(mask))], label(mask))
    if importlib.util.find_spec('scipy'):
        from scipy import ndimage

        def scipy_cc(mask: np.ndarray) -> Tuple[List[Tuple[int, ...]], np.ndarray]:
            comp, _ = ndimage.label(mask, structure=np.ones((3, 3)))
            return [(s[0].start, s[1].start, s[0].stop, s[1].stop)
                    for s in ndimage.find_objects(comp)], comp
        return 'scipy.ndimage.label+find_objects (scikit-image not installed)', scipy_cc
    import cv2

    def cv2_cc(mask: np.ndarray) -> Tuple[List[Tuple[int, ...]], np.ndarray]:
        _, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
        return [(y, x, y + h, x + w) for x, y, w, h, _ in stats[1:]], comp
    return 'cv2.connectedComponentsWithStats (scikit-image, scipy not installed)', cv2_cc


def orig_bank_update(criterion: Tensor, sup_logits: Tensor, unsup_logits: Tensor,
                     gt: Tensor, tau: float = 0.999) -> Tensor:
    """cal_category_confidence (per-class loop, absent class -> 0) + EMA of the (3, C) bank."""
    num_classes = sup_logits.shape[1]
    step = torch.zeros(num_classes)
    probs = F.softmax(sup_logits, dim=1)
    F.softmax(unsup_logits, dim=1)  # computed and unused by the original
    for c in range(num_classes):
        mask = gt == c
        if torch.sum(mask) > 0:  # host sync per class
            step[c] = torch.sum(probs[:, c] * mask) / (torch.sum(mask) + 1e-12)
    return criterion * tau + step * (1 - tau)


def orig_presence_update(bank: Tensor, teacher: Tensor, ids: List[int]) -> None:
    """update_cutmix_bank: argmax, torch.unique and a per-class count loop per image."""
    area = teacher.shape[-1]**2
    for img, img_id in zip(teacher, ids):
        pred = img.max(0)[1]
        values = torch.unique(pred)
        for c in range(bank.shape[0]):
            present = c in values and torch.sum(pred == c) >= PRESENCE_THRESH * area
            bank[c][img_id] = int(present)


def orig_box_and_mix(teacher: Tensor, images: Tensor, cat: int,
                     cc: Callable) -> Tuple[Tensor, Tensor]:
    """generate_cutmix_mask on the host, then mixing of the images and the 19-channel logits."""
    pred = teacher[1].max(0)[1].cpu().numpy()
    h = pred.shape[0]
    box = None
    if cat in np.unique(pred):
        boxes, comp = cc(pred == cat)
        values = np.unique(comp)[1:]
        random.shuffle(values)
        for v in values:  # one full-image comparison per component until one is big enough
            if np.sum(comp == v) > COMP_THRESH * h**2:
                box = boxes[v - 1]
                break
    if box is None:  # init_cutmix: random box of half the image
        y_prop = np.exp(np.random.uniform() * np.log(0.5))
        sy, sx = round(y_prop * h), round(0.5 / y_prop * h)
        y0, x0 = round((h - sy) * np.random.uniform()), round((h - sx) * np.random.uniform())
        box = (y0, x0, y0 + sy, x0 + sx)
    mask = np.zeros((h, h))
    mask[box[0]:box[2], box[1]:box[3]] = 1
    mask = torch.from_numpy(mask).long().to(teacher.device)
    mixed_img = images[0] * (1 - mask) + images[1] * mask
    mixed_logits = teacher[0] * (1 - mask) + teacher[1] * mask
    return mixed_img, mixed_logits


def orig_loss(logits: Tensor, conf: Tensor, target: Tensor, criterion: Tensor,
              gamma: float = 2.0) -> Tensor:
    """Criterion_cons(sample=True): per-class Bernoulli loop, weights normalised over all pixels."""
    ce = F.cross_entropy(logits, target, ignore_index=255, reduction='none')
    weight = conf.pow(gamma)
    rates = 1 - criterion
    rates = rates / (rates.max() + 1e-12)
    pred = logits.max(1)[1].float()
    keep = torch.zeros_like(pred)
    h, w = pred.shape[-2:]
    for c in range(len(rates)):
        rand = torch.rand(h, w, device=logits.device) * (pred == c)  # one map for the batch
        keep += (rand > 1 - rates[c]) * 1.0
    weight = weight * keep
    return (weight / (weight.sum() + 1e-12) * ce).sum()


def orig_copy_paste(images: Tensor, labels: Tensor, paste_images: Tensor,
                    paste_labels: Tensor, criterion: Tensor) -> Tuple[Tensor, Tensor]:
    """Host-side class draws (sqrt-softmax over allowed classes) + dynamic_copy_paste loops."""
    allowed = [c for c in range(len(criterion)) if c not in EXCLUDED]
    p = np.sqrt((1 - criterion)[allowed].numpy())
    p = np.exp(p) / np.exp(p).sum()
    query = list({np.random.choice(allowed, p=p) for _ in range(K_ACP)})
    out_img, out_lbl = [], []
    for img, lbl, p_img, p_lbl in zip(images, labels, paste_images, paste_labels):
        if torch.sum(p_lbl) != 0:  # an all-zero label: no paste image was drawn
            alpha = torch.zeros_like(p_lbl).int()
            for c in query:
                alpha = alpha | (p_lbl == c).int()
            img, lbl = (1 - alpha) * img + alpha * p_img, (1 - alpha) * lbl + alpha * p_lbl
        out_img.append(img[None])
        out_lbl.append(lbl[None])
    return torch.cat(out_img), torch.cat(out_lbl)


def orig_sampling(criterion: Tensor, bank: Tensor) -> Tuple[int, int]:
    """sample_from_bank: numpy softmax(1 - Conf), class draw, image among holders."""
    p = np.exp((1 - criterion).numpy())
    p = p / p.sum()
    cls = np.random.choice(range(bank.shape[0]), p=p)
    holders = torch.nonzero(bank[cls])
    return cls, (random.choice(holders) if len(holders) else random.randint(0, bank.shape[1] - 1))


# --------------------------------------------------------------------- benchmark
Ops = Dict[str, Callable[[], object]]


def with_backward(student: Tensor, loss_of: Callable[[], Tensor]) -> Callable[[], None]:
    """``loss_of()`` forward + backward into the leaf ``student``."""
    def run() -> None:
        student.grad = None
        loss_of().backward()
    return run


def build_ours(x: Dict[str, Tensor], student: Tensor, ncls: int, cls: int,
               device: torch.device, loss_resolution: str = 'input') -> Ops:
    """The project's modules, built from the registry, as one step calls them."""
    init_default_scope('mmseg')
    bank = ConfidenceBank(ncls).to(device)
    bank.update(torch.rand(ncls, device=device) * 100, torch.full_like(bank.ema, 100.0))
    cutmix = MODELS.build(dict(type='AdaptiveCutMix', num_classes=ncls,
                               presence_area_thresh=PRESENCE_THRESH,
                               component_area_thresh=COMP_THRESH)).to(device)
    cutmix.resize_presence(NUM_UNLABELED)
    copy_paste = MODELS.build(dict(type='AdaptiveCopyPaste', num_classes=ncls,
                                   num_sampled_classes=K_ACP, excluded_classes=EXCLUDED))
    copy_paste.to(device)
    loss_fn = MODELS.build(dict(type='AELWeightedCELoss', gamma=2.0))
    sample_idx = torch.tensor([17, 2024], device=device)
    classes = torch.tensor([cls], device=device)
    host_table = torch.rand(ncls, NUM_UNLABELED) < 0.3  # the sampler's host copy
    rng = np.random.default_rng(0)
    rates = aes_sampling_rates(bank.confidence, loss_fn.beta)

    def sampling() -> None:
        acm_class_probabilities(bank.confidence)
        acp_class_probabilities(bank.confidence, copy_paste.allowed_mask)
        aes_sampling_rates(bank.confidence, loss_fn.beta)
        ACMSourceState(1, bank.confidence.cpu(), host_table).sample_source(0, rng)

    if loss_resolution == 'logits':
        # The head's own 1/4 grid; labels and pseudo-labels nearest-resized
        # inside the timed ops, as AELSegmentor does in this mode.
        grid = tuple(d // 4 + 1 for d in x['gt'].shape[-2:])
        head = x['student'][:, :, ::4, ::4].contiguous()
        student = head.clone().requires_grad_()

        def near(t: Tensor) -> Tensor:
            return F.interpolate(t[:, None].float(), size=grid, mode='nearest')[:, 0]

        def bank_op() -> None:
            bank.update(*bank.batch_statistics(head[:2], near(x['gt']).long()))

        def loss() -> Tensor:
            return loss_fn(student, near(x['pseudo']).long(), near(x['pseudo_conf']), rates)
    else:
        def bank_op() -> None:
            bank.update(*bank.batch_statistics(x['student'][:2], x['gt']))

        def loss() -> Tensor:
            return loss_fn(student, x['pseudo'], x['pseudo_conf'], rates)

    return {
        'bank': bank_op,
        'presence': lambda: cutmix.write_presence(sample_idx, cutmix.compute_presence(x['pred'])),
        'acm': lambda: cutmix(x['unsup_images'][:1], x['unsup_images'][1:], x['pred'][:1],
                              x['pred'][1:], x['conf'][:1], x['conf'][1:], classes),
        'loss': loss,
        'acp': lambda: copy_paste(x['images'], x['gt'], x['paste_images'], x['paste_labels'],
                                  bank.confidence),
        'sampling': sampling,
    }


def build_original(x: Dict[str, Tensor], student: Tensor, ncls: int, cls: int,
                   device: torch.device, cc: Callable) -> Ops:
    """The original-style reference on the same tensors."""
    criterion = torch.rand(3, ncls)  # the original's bank: uniform random start, on the host
    table = torch.zeros(ncls, NUM_UNLABELED, device=device)
    half_paste = x['paste_labels'].clone()
    half_paste[1] = 0  # the original pastes with p=0.5: one image of the two here

    def loss() -> Tensor:  # called on the labeled (2) and the mixed (1) images
        return (orig_loss(student[:2], x['pseudo_conf'][:2], x['pseudo'][:2], criterion[0])
                + orig_loss(student[2:], x['pseudo_conf'][2:], x['pseudo'][2:], criterion[0]))

    return {
        'bank': lambda: orig_bank_update(criterion, x['student'][:2], x['student'][2:],
                                         x['gt']),
        'presence': lambda: orig_presence_update(table, x['teacher'], [17, 2024]),
        'acm': lambda: orig_box_and_mix(x['teacher'], x['unsup_images'], cls, cc),
        'loss': loss,
        'acp': lambda: orig_copy_paste(x['images'], x['gt'], x['paste_images'], half_paste,
                                       criterion[0]),
        'sampling': lambda: orig_sampling(criterion[0], table),
    }


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    device, ncls = torch.device(args.device), args.num_classes
    x = make_inputs(args.size, ncls, device)
    student = x['student'].clone().requires_grad_()
    cls = acm_class(x['pred'][1], ncls)
    cc_name, cc = cc_backend()

    def plain_ce() -> Tensor:
        return F.cross_entropy(student, x['pseudo'], ignore_index=255)

    groups = [build_ours(x, student, ncls, cls, device, args.loss_resolution),
              build_original(x, student, ncls, cls, device, cc), dict(loss=plain_ce)]
    for ops in groups:
        ops['loss_bwd'] = with_backward(student, ops['loss'])
    timings = time_interleaved(groups, device, args.repeats)
    report(*timings, args, device, cc_name, cls)


def report(t_ours: Dict[str, float], t_orig: Dict[str, float], t_ref: Dict[str, float],
           args: argparse.Namespace, device: torch.device, cc_name: str, cls: int) -> None:
    """Print the markdown table and the totals."""
    shape = f'3x{args.num_classes}x{args.size}x{args.size}'
    rows = [('bank', '1. bank update: batch_statistics + update'),
            ('presence', f'2. presence: compute + write ({NUM_UNLABELED}-image table)'),
            ('acm', f'3. ACM box from components + mix (P=1, class {cls})'),
            ('loss', f'4. AEL loss forward ({shape})'),
            ('acp', '5. ACP forward (2 labeled images)'),
            ('sampling', '6. sampling distributions (+ ACM class/image draw)')]
    for t in (t_ours, t_orig):
        t['total'] = sum(t[key] for key, _ in rows)
        t['overhead'] = t['total'] - t_ref['loss']
        t['extra'], t['extra_bwd'] = t['loss'] - t_ref['loss'], t['loss_bwd'] - t_ref['loss_bwd']
    rows += [('total', '**total (1-6, loss forward)**'),
             ('overhead', 'total AEL overhead (loss counted beyond plain CE)'),
             ('loss_bwd', 'not in total: AEL loss forward+backward'),
             ('extra', 'not in total: AEL loss beyond plain CE, forward'),
             ('extra_bwd', 'not in total: AEL loss beyond plain CE, forward+backward')]
    print(f'device: {device} | torch {torch.__version__} | threads {torch.get_num_threads()} '
          f'| median of {args.repeats} | original-style components: {cc_name}\n')
    print('| operation | ours (ms) | original-style (ms) | original / ours |')
    print('|---|---:|---:|---:|')
    for key, name in rows:
        print(f'| {name} | {t_ours[key]:.1f} | {t_orig[key]:.1f} | '
              f'{t_orig[key] / t_ours[key]:.1f}x |')
    print(f'| reference: plain F.cross_entropy forward / forward+backward ({shape}) | '
          f'{t_ref["loss"]:.1f} / {t_ref["loss_bwd"]:.1f} | same | |')
    total = t_ours['total']
    print(f'\noriginal-style total measured in this run: {t_orig["total"]:.1f} ms '
          f'(ours / original-style = {total / t_orig["total"]:.3f})')


if __name__ == '__main__':
    main()
