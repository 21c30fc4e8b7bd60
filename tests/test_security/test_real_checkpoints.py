"""Real AEL checkpoints of the stock train script still load, resume and `load_from`
with the restricted allow-list, and without a warning."""
import glob
import os.path as osp
import shutil
import warnings

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from ael_mmseg.utils.compat import SCOPED_LOADING, load_checkpoint_file
from helpers.stock_tools import TOY_CONFIG, run_stock_tool, tiny_toy_options

LOAD_WARNINGS = ('weights_only', 'UnpicklingError', 'unexpected key', 'missing keys',
                 'fully unpickled')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, toy_root):
    """Four AEL iterations, validated at 2 and 4: interval and best checkpoints."""
    root = tmp_path_factory.mktemp('real_checkpoints')
    work_dir = root / 'work'
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', str(work_dir), '--cfg-options',
                                *tiny_toy_options(toy_root)], cwd=str(root))
    best = glob.glob(str(work_dir / 'best_*.pth'))
    assert best, f'no best checkpoint in {work_dir}'
    # Copies: resuming below rotates the work dir's checkpoints.
    saved = root / 'saved'
    saved.mkdir()
    paths = [str(saved / osp.basename(p)) for p in (str(work_dir / 'iter_4.pth'), best[0])]
    for source, copy in zip((str(work_dir / 'iter_4.pth'), best[0]), paths):
        shutil.copyfile(source, copy)
    return root, work_dir, paths


@pytest.mark.skipif(not SCOPED_LOADING, reason='torch < 2.5 unpickles everything: nothing to '
                    'allow-list (the GPU-stack tests below still load and resume)')
def test_interval_and_best_checkpoints_load_weights_only_without_warnings(trained):
    _, _, paths = trained
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
            same = load_checkpoint_file(path)
        buffers = checkpoint['message_hub']['log_scalars']
        assert buffers and all(type(b) is HistoryBuffer for b in buffers.values())
        assert torch.equal(same['state_dict']['confidence_bank.ema'],
                           checkpoint['state_dict']['confidence_bank.ema'])


def test_stock_resume_and_load_from_take_the_real_checkpoints(trained, toy_root):
    root, work_dir, (interval, best) = trained
    options = tiny_toy_options(toy_root, max_iters=6)
    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', str(work_dir), '--resume',
                                      '--cfg-options', *options], cwd=str(root))
    assert 'resumed' in log.lower() and osp.exists(work_dir / 'iter_6.pth')
    log += run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', str(root / 'from_best'),
                                       '--cfg-options', *options, f'load_from={best}'],
                          cwd=str(root))
    assert 'Load checkpoint from' in log
    assert not [word for word in LOAD_WARNINGS if word in log]


def test_model_load_checkpoint_is_strict_clean(trained):
    """`mmengine.runner.load_checkpoint` into the built AEL model: every key matches."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    _, work_dir, (interval, _) = trained
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(work_dir / osp.basename(TOY_CONFIG)))
    model = MODELS.build(cfg.model)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        load_checkpoint(model, interval, map_location='cpu', strict=True)
