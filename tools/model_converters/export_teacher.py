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

``--out-config`` needs the AEL config: ``--config``, or
``--config-from-checkpoint`` to execute the config text stored in the
checkpoint's meta (it runs as Python, so only for a checkpoint you trust).
The work is done by
:func:`ael_mmseg.apis.export_segmentor`, which Python code can call directly.
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import DictAction

from ael_mmseg.apis import export_segmentor


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the teacher (or student) of an AEL checkpoint as a plain '
        'MMSeg checkpoint, and optionally the plain (non-AEL) config')
    parser.add_argument('checkpoint', help='AEL checkpoint (.pth) written by the train script')
    parser.add_argument('out', help='output checkpoint path')
    parser.add_argument('--student', action='store_true',
                        help='export the student instead of the EMA teacher')
    parser.add_argument('--config', help='AEL config the plain config is made from (only '
                        'used with --out-config)')
    parser.add_argument('--config-from-checkpoint', action='store_true',
                        help="without --config, take the config text stored in the checkpoint's "
                        "meta['cfg']; mmengine executes it as Python, so a crafted checkpoint "
                        'runs its code: use only for a checkpoint you trust')
    parser.add_argument('--out-config', help='where to write the plain config (.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to the AEL config first, e.g. '
                        'test_dataloader.dataset.data_root=data/cityscapes')
    args = parser.parse_args(argv)
    if (args.config or args.cfg_options or args.config_from_checkpoint) and not args.out_config:
        parser.error('--config, --config-from-checkpoint and --cfg-options only make sense '
                     'with --out-config')
    if args.config and args.config_from_checkpoint:
        parser.error('--config and --config-from-checkpoint exclude each other')
    if args.out_config and not (args.config or args.config_from_checkpoint):
        parser.error('--out-config needs the AEL config: pass --config CONFIG, or '
                     "--config-from-checkpoint to execute the checkpoint's stored config text "
                     '(runs as Python: only for a checkpoint you trust)')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    export_segmentor(args.checkpoint, args.out, which='student' if args.student else 'teacher',
                     out_config=args.out_config, config=args.config,
                     cfg_options=args.cfg_options,
                     config_from_checkpoint=args.config_from_checkpoint)


if __name__ == '__main__':
    main()
