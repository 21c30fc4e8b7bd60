"""README "Your own data", end to end on the CPU: a plain-layout folder with its own classes,
split by make_semi_splits.py, trained by the stock train.py from the template config, evaluated
by the stock test.py, exported to a plain MMSeg model."""
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from helpers.paper_configs import save_standin_pretrained, small_model_options
from helpers.plain_dataset import (DEFECT_CLASSES, DEFECT_PALETTE, make_plain_dataset,
                                   write_user_config)
from helpers.stock_tools import REPO_ROOT, run_stock_tool

TEMPLATE = osp.join(REPO_ROOT, 'configs', 'ael',
                    'ael_deeplabv3plus_r50-d8_4xb2-20k_custom-512x512.py')
SPLIT_TOOL = osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'make_semi_splits.py')
EXPORT_TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'export_teacher.py')


def _export_tool():
    spec = importlib.util.spec_from_file_location('export_teacher', EXPORT_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    proc = subprocess.run([sys.executable, script, *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return proc.returncode, proc.stdout


def shrink_options(pretrained):
    """What the CPU forces: a ResNet-18 with slim heads whose ImageNet weights are a local
    stand-in file (no download here), 4 iterations, no loader workers. Data, classes, crop and
    everything AEL come from the edited template."""
    options = small_model_options(pretrained) + [
        'train_cfg.max_iters=4', 'train_cfg.val_interval=2', 'param_scheduler.0.end=4',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return options


@pytest.fixture(scope='module')
def user(tmp_path_factory):
    """A user's folder and config: images .jpg, masks <id>_mask.png, classes of their own."""
    base = tmp_path_factory.mktemp('own_data')
    root = str(base / 'data' / 'defects')
    make_plain_dataset(root, num_train=10, num_val=3, size=(48, 64), img_suffix='.jpg',
                       seg_map_suffix='_mask.png', seed=0)
    # The "set once" block of the template, edited; the crop follows the template's own
    # advice for images smaller than 512 (use their size).
    config = write_user_config(
        TEMPLATE, str(base / 'ael_defects.py'), data_root=root, classes=DEFECT_CLASSES,
        palette=DEFECT_PALETTE, seg_map_suffix='_mask.png', split='1_4/fold0',
        stuff_classes=('metal', ), image_scale=(64, 48), crop_size=(32, 32))
    pretrained = str(base / 'resnet18_v1c_standin.pth')
    save_standin_pretrained(pretrained)
    return base, root, config, pretrained


def test_split_train_test_export(user):
    base, root, config, pretrained = user
    # 1. split
    rc, out = _run(SPLIT_TOOL, 'plain', root, '--config', config, '--partitions', '1/4',
                   '--folds', '2', cwd=str(base))
    assert rc == 0, out
    assert "10 training and 3 val images, 4 classes ['metal', 'rust', 'scratch', 'dent']" in out
    split_dir = osp.join(root, 'splits', 'plain', '1_4', 'fold0')
    with open(osp.join(split_dir, 'class_frequencies.json')) as f:
        report = json.load(f)
    assert report['num_images'] == 3 and report['tail_classes']  # ceil(10 / 4)
    assert re.search(r'1_4/fold0: \w+ \d+\.\d\d%', out), out

    # 2. train (stock train.py)
    work_dir = base / 'work'
    log = run_stock_tool('train.py', [config, '--work-dir', str(work_dir), '--cfg-options',
                                      *shrink_options(pretrained)], cwd=str(base))
    assert 'sup.decode.loss_ce' in log and 'unsup.loss_ael' in log
    scalars = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0]) if line.strip()]
    last = [r for r in records if 'teacher/mIoU' in r][-1]
    assert {f'teacher/IoU.{name}' for name in DEFECT_CLASSES} <= set(last)
    assert 'teacher/mIoU.tail' in last and 'student/mIoU.tail' in last
    tail = [last[f'teacher/IoU.{name}'] for name in report['tail_classes']]
    known = [v for v in tail if v == v]  # NaN: class absent from prediction and labels
    if known:
        assert last['teacher/mIoU.tail'] == pytest.approx(sum(known) / len(known), abs=0.02)
    checkpoint = str(work_dir / 'iter_4.pth')
    assert osp.isfile(checkpoint)

    # 3a. test (stock test.py, AEL config: the teacher predicts). The config the train script
    # saved beside the checkpoint holds the shrunk model.
    trained_cfg = str(work_dir / osp.basename(config))
    log = run_stock_tool('test.py', [trained_cfg, checkpoint, '--work-dir', str(base / 'test')],
                         cwd=str(base))
    assert 'do not match exactly' not in log  # every weight of the checkpoint was loaded
    match = re.search(r'Iter\(test\).*mIoU: ([0-9.]+)', log)
    assert match, log[-3000:]
    assert float(match[1]) == pytest.approx(last['teacher/mIoU'], abs=0.01)
    assert re.search(r'mIoU\.tail: [0-9.na]+', log) and '| scratch |' in log

    # 3b. export the teacher and its plain config; stock test.py without the plugin's metric
    plain_cfg, teacher = str(base / 'teacher_config.py'), str(base / 'teacher.pth')
    _export_tool().main([checkpoint, teacher, '--config', trained_cfg, '--out-config', plain_cfg])
    text = open(plain_cfg).read()
    assert 'PerClassIoUMetric' not in text and 'tail_classes_file' not in text
    log = run_stock_tool('test.py', [plain_cfg, teacher, '--work-dir', str(base / 'test2')],
                         cwd=str(base))
    assert 'do not match exactly' not in log
    match = re.search(r'Iter\(test\).*mIoU: ([0-9.]+)', log)
    assert match and float(match[1]) == pytest.approx(last['teacher/mIoU'], abs=0.01)
