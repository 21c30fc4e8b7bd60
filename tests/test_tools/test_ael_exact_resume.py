"""AEL through the stock train script: resumed runs repeat the uninterrupted run's losses.

With the toy config's own data loader (2 persistent workers) and ACP, ACM and
AES on from the first step: every random draw is keyed by (seed, rank,
iteration, slot), so neither a resume nor the number of workers changes a loss.
"""
import glob
import os.path as osp
import signal

import pytest
import torch

from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.stock_tools import (TOY_CONFIG, logged_losses, run_stock_tool, tiny_toy_options,
                                 train_until_signalled)

LOSS_KEYS = ('loss', 'sup.decode.loss_ce', 'sup.aux.loss_ce', 'unsup.loss_ael',
             'unsup.loss_ael_labeled')
MAX_ITERS = 8


def _options(toy_root, *extra, workers=2):
    # Validation every 2 iterations: its data loading must not shift any draw.
    # No interval checkpoint before the end: the only one in between is the signal's.
    loader = ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'] \
        if workers == 0 else [f'train_dataloader.num_workers={workers}',
                              'train_dataloader.persistent_workers=True']
    return ['--cfg-options', *tiny_toy_options(toy_root, max_iters=MAX_ITERS, val_interval=2),
            *loader, 'default_hooks.checkpoint.interval=100', 'log_processor.window_size=1',
            'randomness.deterministic=True', *extra]


def _losses(work_dir):
    return logged_losses(work_dir, LOSS_KEYS)


def _assert_same_losses(actual, expected, steps):
    for step in steps:
        for key in LOSS_KEYS:
            assert abs(actual[step][key] - expected[step][key]) <= 1e-6, (step, key)


@pytest.fixture(scope='module')
def straight_run(tmp_path_factory, toy_root):
    """The uninterrupted reference run, with the config's 2 persistent workers."""
    work_dir = str(tmp_path_factory.mktemp('straight'))
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', work_dir, *_options(toy_root)],
                   cwd=work_dir)
    losses = _losses(work_dir)
    assert sorted(losses) == list(range(1, MAX_ITERS + 1))
    assert losses[MAX_ITERS]['unsup.loss_ael'] > 0  # the AEL losses were really active
    return work_dir, losses


# SIGTERM to the main process (a launcher's kill), SIGUSR1 to the process group
# (tools/slurm_train.sh's signal, which srun delivers to every process of the
# task: the loader's workers must survive it). torch's loader workers end on a
# SIGTERM that does not come from their parent, so SIGTERM to the whole group
# cannot be survived.
@pytest.mark.parametrize('sig,to_group', [(signal.SIGTERM, False), (signal.SIGUSR1, True)],
                         ids=['sigterm-main-process', 'sigusr1-process-group'])
def test_signal_and_resume_repeat_every_later_loss_with_workers(tmp_path, toy_root,
                                                                straight_run, sig, to_group):
    straight, reference = straight_run
    signalled = str(tmp_path / 'signalled')
    code, log = train_until_signalled([TOY_CONFIG, '--work-dir', signalled,
                                       *_options(toy_root)], str(tmp_path),
                                      after_iteration=3, sig=sig, to_group=to_group)
    assert code == 75, log[-4000:]
    assert f'PreemptionCheckpointHook: {sig.name}; saving checkpoint at' in log
    saved = sorted(glob.glob(osp.join(signalled, 'iter_*.pth')))
    assert len(saved) == 1, saved  # exactly one checkpoint, the signal's
    checkpoint = load_checkpoint_file(saved[0])
    stop = checkpoint['meta']['iter']
    assert 4 <= stop < MAX_ITERS and saved[0].endswith(f'iter_{stop}.pth')
    acm = checkpoint['ael_state']['acm_source']  # the lag's history, up to the saved step
    assert acm['lag'] == 4 and acm['base_step'] + len(acm['steps']) == stop

    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', signalled, '--resume',
                                      *_options(toy_root)], cwd=str(tmp_path))
    assert f'SemiSegSampler starts at step {stop}' in log
    assert 'resuming at iteration' not in log  # nothing the resume could not restore
    resumed = _losses(signalled)
    assert sorted(resumed) == list(range(stop + 1, MAX_ITERS + 1))
    _assert_same_losses(resumed, reference, resumed)
    # Student, teacher, bank, presence table and optimizer state all agree.
    final = load_checkpoint_file(osp.join(signalled, f'iter_{MAX_ITERS}.pth'))
    expected = load_checkpoint_file(osp.join(straight, f'iter_{MAX_ITERS}.pth'))
    for key, value in expected['state_dict'].items():
        assert torch.allclose(final['state_dict'][key].float(), value.float(), atol=1e-6), key


def test_the_number_of_workers_does_not_change_training(tmp_path, toy_root, straight_run):
    _, reference = straight_run
    work_dir = str(tmp_path / 'no_workers')
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', work_dir,
                                *_options(toy_root, workers=0)], cwd=str(tmp_path))
    _assert_same_losses(_losses(work_dir), reference, range(1, MAX_ITERS + 1))


def test_a_loader_prefetching_deeper_than_the_acm_lag_is_refused(tmp_path, toy_root):
    with pytest.raises(AssertionError, match=r'num_workers \(2\) x prefetch_factor \(2\) = 4 '
                                             r'steps ahead, more than '
                                             r'train_dataloader\.sampler\.acm_lag=3'):
        run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', str(tmp_path / 'deep'),
                                    *_options(toy_root, 'train_dataloader.sampler.acm_lag=3')],
                       cwd=str(tmp_path))


def test_resume_from_a_checkpoint_without_ael_state_warns_and_continues(tmp_path, toy_root):
    first = str(tmp_path / 'first')
    options = _options(toy_root, 'default_hooks.checkpoint.interval=4', workers=0)
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', first, *options,
                                'train_cfg.max_iters=4'], cwd=str(tmp_path))
    # What an older run (or a plain segmentor's training) would have written.
    checkpoint = load_checkpoint_file(osp.join(first, 'iter_4.pth'))
    del checkpoint['ael_state']
    checkpoint['state_dict'] = {k: v for k, v in checkpoint['state_dict'].items()
                                if not k.startswith(('confidence_bank.', 'cutmix.'))}
    old = str(tmp_path / 'old_iter_4.pth')
    torch.save(checkpoint, old)

    work_dir = str(tmp_path / 'continued')
    # The stock script's --resume with load_from: resume from that file.
    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', work_dir, '--resume',
                                      *options, f'load_from={old}'], cwd=str(tmp_path))
    assert 'AELHook: resuming at iteration 4 from a checkpoint without an AEL ' \
           'confidence bank' in log
    assert 'the confidence bank and the ACM presence table restart' in log
    assert 'without the ACM source history' in log
    final = load_checkpoint_file(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))
    assert final['meta']['iter'] == MAX_ITERS
