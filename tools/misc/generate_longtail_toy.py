"""Write the long-tailed toy dataset and print its per-class pixel frequencies.

Example::

    python tools/misc/generate_longtail_toy.py --out data/longtail_toy \\
        --num-labeled 20 --num-unlabeled 400 --num-val 100 --size 64 --seed 0
"""
import argparse
import time

from ael_mmseg.datasets.longtail_toy import (LONGTAIL_TOY_CLASSES, class_pixel_frequencies,
                                             make_longtail_toy, read_label_maps)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the long-tailed toy dataset.')
    parser.add_argument('--out', default='data/longtail_toy', help='dataset root')
    parser.add_argument('--num-labeled', type=int, default=20)
    parser.add_argument('--num-unlabeled', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.time()
    info = make_longtail_toy(args.out, args.num_labeled, args.num_unlabeled, args.num_val,
                             args.size, args.seed)
    print(f'wrote {args.out} in {time.time() - start:.1f} s: ' +
          ', '.join(f'{len(v)} {k}' for k, v in info.splits.items()))

    num_classes = len(LONGTAIL_TOY_CLASSES)
    train = read_label_maps(args.out, 'splits/labeled.txt', 'ann_dir/train')
    labeled_freq = class_pixel_frequencies(train, num_classes)
    presence = [sum(bool((m == c).any()) for m in train) for c in range(num_classes)]
    if info.splits['unlabeled']:
        train += read_label_maps(args.out, 'splits/unlabeled.txt', 'ann_dir/train')
    train_freq = class_pixel_frequencies(train, num_classes)
    print(f'{"id":>2}  {"class":<16} {"train %":>8} {"labeled %":>10} {"labeled imgs":>13}')
    for c in sorted(range(num_classes), key=lambda c: -train_freq[c]):
        print(f'{c:>2}  {LONGTAIL_TOY_CLASSES[c]:<16} {100 * train_freq[c]:8.2f} '
              f'{100 * labeled_freq[c]:10.2f} {presence[c]:>13}')


if __name__ == '__main__':
    main()
