"""Per-class IoU tables and plots from AEL / baseline work dirs.

Reads the scalar logs mmengine writes (``<work_dir>/<timestamp>/vis_data/
scalars.json``): the last validation's ``teacher/IoU.<class>`` and
``student/IoU.<class>`` (from ``PerClassIoUMetric``) and the confidence bank
series ``ael/<series>/<class>`` (from ``AELHook``).

    python tools/analysis_tools/ael_report.py ael=work_dirs/demo/ael \
        supervised=work_dirs/demo/supervised --plot-dir work_dirs/demo/plots
"""
import argparse
import glob
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple


def load_scalars(work_dir: str) -> List[dict]:
    """All scalar records of the latest run in ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir!r}; did the run '
                                'validate at least once?')
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def last_validation(records: List[dict]) -> Dict[str, float]:
    """The last record holding per-class IoU."""
    for record in reversed(records):
        if any(key.endswith('mIoU') for key in record):
            return record
    raise ValueError('no validation record (mIoU) in the scalar log')


def per_class(record: Dict[str, float], model: str) -> Tuple[Dict[str, float], float]:
    prefix = f'{model}/IoU.'
    ious = {k[len(prefix):]: v for k, v in record.items() if k.startswith(prefix)}
    return ious, record.get(f'{model}/mIoU', float('nan'))


def bank_series(records: List[dict]) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    series: Dict[str, Dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for key, value in record.items():
            if key.startswith('ael/'):
                _, name, class_name = key.split('/', 2)
                series[name][class_name].append((record['step'], value))
    return series


def markdown_table(columns: Dict[str, Tuple[Dict[str, float], float]]) -> str:
    names = list(next(iter(columns.values()))[0])
    lines = ['| class | ' + ' | '.join(columns) + ' |',
             '|---|' + '---:|' * len(columns)]
    for name in names:
        cells = [f'{ious.get(name, float("nan")):.2f}' for ious, _ in columns.values()]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append('| **mIoU** | ' + ' | '.join(f'**{m:.2f}**' for _, m in columns.values()) +
                 ' |')
    return '\n'.join(lines)


def plot(runs: Dict[str, List[dict]], columns: dict, out_dir: str) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    for label, records in runs.items():
        series = bank_series(records)
        if not series:
            continue
        titles = dict(conf='confidence bank Conf_c (Eq. 7)', acm_prob='ACM class prob. (Eq. 9)',
                      acp_prob='ACP class prob.', aes_rate='AES keep rate (Eq. 10-11)')
        names = [n for n in titles if n in series]
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
        for ax, name in zip(axes[0], names):
            for class_name, points in series[name].items():
                steps, values = zip(*points)
                ax.plot(steps, values, label=class_name)
            ax.set_title(titles[name])
            ax.set_xlabel('iteration')
        axes[0][-1].legend(fontsize=7, loc='center left', bbox_to_anchor=(1, 0.5))
        fig.tight_layout()
        path = osp.join(out_dir, f'{label}_confidence_bank.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    class_names = list(next(iter(columns.values()))[0])
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(8, len(class_names) * 0.9), 4))
    for i, (label, (ious, _)) in enumerate(columns.items()):
        x = np.arange(len(class_names)) + i * width
        ax.bar(x, [ious.get(n, np.nan) for n in class_names], width, label=label)
    ax.set_xticks(np.arange(len(class_names)) + 0.4 - width / 2)
    ax.set_xticklabels(class_names, rotation=30, ha='right')
    ax.set_ylabel('IoU (%)')
    ax.legend()
    fig.tight_layout()
    path = osp.join(out_dir, 'per_class_iou.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', help='LABEL=WORK_DIR pairs')
    parser.add_argument('--plot-dir', help='write PNG plots here')
    args = parser.parse_args()
    runs, columns = {}, {}
    for item in args.runs:
        if '=' not in item:
            parser.error(f'expected LABEL=WORK_DIR, got {item!r}')
        label, work_dir = item.split('=', 1)
        runs[label] = load_scalars(work_dir)
        record = last_validation(runs[label])
        for model in ('teacher', 'student'):
            ious, miou = per_class(record, model)
            if ious:
                columns[f'{label} {model}'] = (ious, miou)
    print(markdown_table(columns))
    if args.plot_dir:
        import os
        os.makedirs(args.plot_dir, exist_ok=True)
        for path in plot(runs, columns, args.plot_dir):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
