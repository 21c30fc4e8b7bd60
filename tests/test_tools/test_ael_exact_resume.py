"""AEL through the stock train script: stop after a checkpoint, --resume, same losses."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.stock_tools import REPO_ROOT, STOCK_TOOLS, TOY_CONFIG, run_stock_tool, tiny_toy_options

LOSS_KEYS = ('loss', 'sup.decode.loss_ce', 'sup.aux.loss_ce', 'unsup.loss_ael',
             'unsup.loss_ael_labeled')


def _options(toy_root, *extra):
    # Checkpoints and validations every 2 iterations out of 6: the resume point
    # follows a validation, whose data loading must not shift any random state.
    return ['--cfg-options', *tiny_toy_options(toy_root, max_iters=6, val_interval=2),
            'log_processor.window_size=1', 'randomness.deterministic=True', *extra]


def _losses(work_dir):
    """Per-iteration losses of the newest run in ``work_dir``: {iteration: {key: value}}."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalar log in {work_dir}'
    records = [json.loads(line) for line in open(files[-1]) if line.strip()]
    return {r['step']: {k: r[k] for k in LOSS_KEYS} for r in records if 'loss' in r}


def _state(path):
    return load_checkpoint_file(path)


def test_resumed_ael_run_repeats_the_uninterrupted_losses(tmp_path, toy_root):
    straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', straight, *_options(toy_root)],
                   cwd=str(tmp_path))
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', stopped,
                                *_options(toy_root, 'train_cfg.max_iters=4')], cwd=str(tmp_path))
    assert not osp.exists(osp.join(stopped, 'iter_6.pth'))
    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', stopped, '--resume',
                                      *_options(toy_root)], cwd=str(tmp_path))
    assert 'resumed' in log.lower()
    assert 'resuming at iteration' not in log  # no hook missed anything
    # The data position came from the sampler, not from loading the trained batches.
    assert 'Resuming the data stream at step 4' in log
    assert 'Advance dataloader' not in log and 'without the data pipelines' not in log

    reference, resumed = _losses(straight), _losses(stopped)
    assert sorted(resumed) == [5, 6]  # the resumed run trained iterations 5 and 6 only
    for step in (5, 6):
        for key in LOSS_KEYS:
            assert abs(resumed[step][key] - reference[step][key]) <= 1e-6, (step, key)
    # The AEL losses were really active (no warm-up in the tiny options).
    assert reference[6]['unsup.loss_ael'] > 0

    # Student, teacher, bank, presence table and optimizer state all agree.
    final, expected = _state(osp.join(stopped, 'iter_6.pth')), _state(
        osp.join(straight, 'iter_6.pth'))
    assert final['meta']['iter'] == 6
    for key, value in expected['state_dict'].items():
        assert torch.allclose(final['state_dict'][key].float(), value.float(), atol=1e-6), key
    assert any(k.startswith('confidence_bank.') for k in expected['state_dict'])
    momentum = [s['momentum_buffer'] for s in expected['optimizer']['state'].values()]
    resumed_momentum = [s['momentum_buffer'] for s in final['optimizer']['state'].values()]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(momentum, resumed_momentum))


def test_resume_from_a_checkpoint_without_ael_state_warns_and_continues(tmp_path, toy_root):
    first = str(tmp_path / 'first')
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', first,
                                *_options(toy_root, 'train_cfg.max_iters=4')], cwd=str(tmp_path))
    # What an older run (or a plain segmentor's training) would have written.
    checkpoint = _state(osp.join(first, 'iter_4.pth'))
    del checkpoint['ael_state']
    checkpoint['state_dict'] = {k: v for k, v in checkpoint['state_dict'].items()
                                if not k.startswith(('confidence_bank.', 'cutmix.'))}
    old = str(tmp_path / 'old_iter_4.pth')
    torch.save(checkpoint, old)

    work_dir = str(tmp_path / 'continued')
    # The stock script's --resume with load_from: resume from that file.
    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', work_dir, '--resume',
                                      *_options(toy_root, f'load_from={old}')],
                         cwd=str(tmp_path))
    assert 'ConfidenceBankHook: resuming at iteration 4 from a checkpoint without an AEL ' \
           'confidence bank' in log
    assert 'the confidence bank and the ACM presence table restart' in log
    assert 'has no "ael_state"' in log
    assert os.path.exists(osp.join(work_dir, 'iter_6.pth'))
    assert _state(osp.join(work_dir, 'iter_6.pth'))['meta']['iter'] == 6


def _train_until_signalled(args, cwd, after_iteration, sig):
    """Start the stock train script, send ``sig`` once it logged ``after_iteration``."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    proc = subprocess.Popen([sys.executable, osp.join(STOCK_TOOLS, 'train.py'), *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines, deadline = [], time.monotonic() + 600
    for line in proc.stdout:
        lines.append(line)
        if f'Iter(train) [{after_iteration}/' in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, 'no training progress'
    lines.extend(proc.stdout)
    return proc.wait(timeout=600), ''.join(lines)


def test_signalled_run_saves_exits_75_and_resumes_exactly(tmp_path, toy_root):
    # No interval checkpoint before the end: the only one in between is the signal's.
    # Validation every 2 iterations: the stop may come at one (it is skipped then).
    options = _options(toy_root, 'train_cfg.max_iters=8', 'param_scheduler.0.end=8',
                       'default_hooks.checkpoint.interval=100')
    straight, signalled = str(tmp_path / 'straight'), str(tmp_path / 'signalled')
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', straight, *options],
                   cwd=str(tmp_path))

    code, log = _train_until_signalled([TOY_CONFIG, '--work-dir', signalled, *options],
                                       str(tmp_path), after_iteration=2, sig=signal.SIGUSR1)
    assert code == 75, log[-4000:]
    assert 'PreemptionCheckpointHook: SIGUSR1; saving checkpoint at' in log
    saved = sorted(glob.glob(osp.join(signalled, 'iter_*.pth')))
    assert len(saved) == 1, saved  # exactly one checkpoint, the signal's
    checkpoint = _state(saved[0])
    stop = checkpoint['meta']['iter']
    assert 3 <= stop < 8 and saved[0].endswith(f'iter_{stop}.pth')
    assert open(osp.join(signalled, 'last_checkpoint')).read().strip() == saved[0]
    # The full AEL state, as in an interval checkpoint.
    assert checkpoint['ael_state']['torch_rng'] is not None
    assert any(k.startswith('confidence_bank.') for k in checkpoint['state_dict'])
    assert f'stopped after iteration {stop} of 8' in log

    log = run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', signalled, '--resume',
                                      *options], cwd=str(tmp_path))
    assert f'Resuming the data stream at step {stop}' in log
    assert 'resuming at iteration' not in log
    reference, resumed = _losses(straight), _losses(signalled)
    assert sorted(resumed) == list(range(stop + 1, 9))
    for step in resumed:
        for key in LOSS_KEYS:
            assert abs(resumed[step][key] - reference[step][key]) <= 1e-6, (step, key)
