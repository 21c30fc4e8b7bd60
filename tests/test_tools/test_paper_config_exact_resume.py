"""A paper config through the stock train script, with its own 4 persistent loader
workers: a run stopped by SIGTERM and resumed repeats the uninterrupted run's losses.

The Cityscapes 1/32 AEL config, shrunk only where the CPU forces it (ResNet-18,
slim heads, 64x64 crops of a mini Cityscapes root, a scaled test window, a few
iterations): its loader (4 workers x prefetch 2), ACM lag (8), ACP, ACM, AES,
OHEM and sliding-window validation are the shipped ones. Twelve iterations,
so that the last steps draw their ACM source from a bank the run has trained.
"""
import glob
import os.path as osp
import signal

import pytest

from ael_mmseg.datasets.splits import make_split, train_image_ids, write_split
from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.mini_datasets import make_mini_cityscapes
from helpers.paper_configs import save_standin_pretrained, tiny_paper_options
from helpers.stock_tools import REPO_ROOT, logged_losses, run_stock_tool, train_until_signalled

CONFIG = osp.join(REPO_ROOT, 'configs', 'ael',
                  'ael_deeplabv3plus_r101-d8_8xb2-18k_cityscapes-1_32-769x769.py')
MAX_ITERS = 12
LOSS_KEYS = ('loss', 'sup.decode.loss_ce', 'sup.aux.loss_ce', 'unsup.loss_ael',
             'unsup.loss_ael_labeled')


@pytest.fixture(scope='module')
def paper_setup(tmp_path_factory):
    """The mini root, the stand-in ImageNet weights and the options of every run."""
    base = tmp_path_factory.mktemp('paper_resume')
    root = str(base / 'data')
    make_mini_cityscapes(root, num_train=6, num_val=2, size=(64, 128))
    labeled, unlabeled = make_split(train_image_ids('cityscapes', root), 2, seed=0)
    write_split(osp.join(root, 'splits', 'cityscapes', '1_32', 'fold0'), labeled, unlabeled)
    pretrained = str(base / 'resnet18_v1c_standin.pth')
    save_standin_pretrained(pretrained)
    options = tiny_paper_options(root, '(128,64)', pretrained, sliding=True) + [
        f'train_cfg.max_iters={MAX_ITERS}', f'param_scheduler.0.end={MAX_ITERS}',
        'train_cfg.val_interval=6',  # a validation before the signal: it must shift nothing
        'default_hooks.checkpoint.interval=100',  # the only checkpoint in between: the signal's
        'log_processor.window_size=1', 'randomness.deterministic=True']
    return base, ['--cfg-options', *options]


def test_sigterm_and_resume_repeat_every_later_loss_with_the_configs_workers(paper_setup):
    base, options = paper_setup
    straight = str(base / 'straight')
    log = run_stock_tool('train.py', [CONFIG, '--work-dir', straight, *options], cwd=str(base))
    assert "'num_workers': 4" in log or 'num_workers=4' in log, 'not the shipped 4 workers'
    reference = logged_losses(straight, LOSS_KEYS)
    assert sorted(reference) == list(range(1, MAX_ITERS + 1))
    assert reference[MAX_ITERS]['unsup.loss_ael'] > 0

    signalled = str(base / 'signalled')
    code, log = train_until_signalled([CONFIG, '--work-dir', signalled, *options], str(base),
                                      after_iteration=7, sig=signal.SIGTERM)
    assert code == 75, log[-4000:]
    saved = sorted(glob.glob(osp.join(signalled, 'iter_*.pth')))
    assert len(saved) == 1, saved
    stop = load_checkpoint_file(saved[0])['meta']['iter']
    assert 7 <= stop < MAX_ITERS

    log = run_stock_tool('train.py', [CONFIG, '--work-dir', signalled, '--resume', *options],
                         cwd=str(base))
    assert f'SemiSegSampler starts at step {stop}' in log
    resumed = logged_losses(signalled, LOSS_KEYS)
    assert sorted(resumed) == list(range(stop + 1, MAX_ITERS + 1))
    for step in resumed:
        for key in LOSS_KEYS:
            assert abs(resumed[step][key] - reference[step][key]) <= 1e-6, (step, key)
