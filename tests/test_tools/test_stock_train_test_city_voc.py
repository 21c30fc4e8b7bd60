"""The paper configs, shrunk by --cfg-options, on mini Cityscapes / VOC roots:
stock train.py trains AEL, validates teacher and student, saves; stock test.py evaluates.

Shrunk only where the CPU forces it (depth, widths, crop, test window, iterations,
data root); the ImageNet download is a local stand-in file; the shipped loader
workers, the sliding-window test, VOC's pseudo-label threshold and every AEL part
stay on."""
import glob
import json
import os.path as osp

import pytest

from ael_mmseg.datasets.splits import make_split, train_image_ids, write_split
from helpers.mini_datasets import make_mini_cityscapes, make_mini_voc
from helpers.paper_configs import save_standin_pretrained, tiny_paper_options
from helpers.stock_tools import REPO_ROOT, run_stock_tool

CASES = {
    'cityscapes': dict(
        config='configs/ael/ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py',
        split='cityscapes', scale='(128,64)', make=lambda root: make_mini_cityscapes(
            root, num_train=6, num_val=2, size=(64, 128))),
    'voc12aug': dict(
        config='configs/ael/ael_deeplabv3plus_r101-d8_8xb2-30k_voc12aug-1_32-513x513.py',
        split='voc_aug', scale='(64,64)', make=lambda root: make_mini_voc(
            root, num_train=6, num_val=2, size=(64, 64), aug=True)),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_paper_config_trains_validates_and_tests(tmp_path, name):
    case = CASES[name]
    root = str(tmp_path / 'data')
    case['make'](root)
    labeled, unlabeled = make_split(train_image_ids(case['split'], root), 2, seed=0)
    write_split(osp.join(root, 'splits', case['split'], '1_32', 'fold0'), labeled, unlabeled)
    config = osp.join(REPO_ROOT, case['config'])
    work_dir = tmp_path / 'work'
    pretrained = str(tmp_path / 'resnet18_v1c_standin.pth')
    save_standin_pretrained(pretrained)
    options = tiny_paper_options(root, case['scale'], pretrained, sliding=name == 'cityscapes')
    log = run_stock_tool('train.py', [config, '--work-dir', str(work_dir), '--cfg-options',
                                      *options], cwd=str(tmp_path))
    assert 'unsup.loss_ael' in log
    # The backbone loaded the stand-in, and every key of it matched.
    assert f'load model from: {pretrained}' in log
    assert 'missing keys in source state_dict' not in log
    assert 'unexpected key in source state_dict' not in log
    scalars = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0])]
    assert sum('teacher/mIoU' in r and 'student/mIoU' in r for r in records) == 2
    best = glob.glob(str(work_dir / 'best_teacher_mIoU_iter_*.pth'))
    assert best and osp.exists(work_dir / 'iter_4.pth')
    out = run_stock_tool('test.py', [config, str(work_dir / 'iter_4.pth'), '--work-dir',
                                     str(tmp_path / 'test'), '--cfg-options', *options],
                         cwd=str(tmp_path))
    assert 'mIoU' in out and 'per class results' in out
