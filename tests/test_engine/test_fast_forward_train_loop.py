"""FastForwardIterBasedTrainLoop: a resume loads no skipped batch; workers start after hooks."""
import itertools
import os
import signal
from types import SimpleNamespace

import pytest
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader, Dataset

from ael_mmseg.datasets.samplers import SemiSegBatchSampler, semi_seg_sampler
from ael_mmseg.datasets.samplers.semi_seg_sampler import SemiSegSampler
from ael_mmseg.engine.runner import FastForwardIterBasedTrainLoop


class _Recorder(Dataset):
    """Returns each key with the loading process id; records keys loaded in this process."""

    def __init__(self):
        self.labeled, self.unlabeled = [None] * 5, [None] * 7
        self.loaded = []

    def __len__(self):
        return 12

    def __getitem__(self, key):
        self.loaded.append(key)
        return key, os.getpid()


class _Runner:
    """The parts of mmengine's Runner a train loop uses; ``on_hook`` sees every hook call."""

    def __init__(self, on_hook=None):
        self.visualizer = SimpleNamespace(dataset_meta=None)
        self.val_loop = self.optim_wrapper = None
        self.calls, self.batches, self.on_hook = [], [], on_hook
        self.model = SimpleNamespace(train=lambda: None, train_step=self._train_step)

    def _train_step(self, data_batch, optim_wrapper):
        self.batches.append(data_batch)
        return {}

    def call_hook(self, name, **kwargs):
        self.calls.append(name)
        if self.on_hook is not None:
            self.on_hook(name, self)


def _sampler(monkeypatch, dataset):
    monkeypatch.setattr(semi_seg_sampler, 'get_dist_info', lambda: (0, 1))
    return SemiSegSampler(dataset, num_unlabeled=1, seed=3)


def _loader(dataset, sampler, num_workers=0):
    return DataLoader(dataset, batch_sampler=SemiSegBatchSampler(sampler, batch_size=2),
                      num_workers=num_workers, collate_fn=list)


def test_resume_loads_only_the_new_steps_and_yields_the_same_batches(monkeypatch):
    full_data = _Recorder()
    full_sampler = _sampler(monkeypatch, full_data)
    full = [[key for key, _ in batch]
            for batch in itertools.islice(_loader(full_data, full_sampler), 7)]
    dataset = _Recorder()
    runner = _Runner()
    loop = FastForwardIterBasedTrainLoop(runner, _loader(dataset, _sampler(monkeypatch, dataset)),
                                         max_iters=7)
    assert loop.dataloader_iterator is None  # nothing started when the loop is built
    loop._iter = 5  # what Runner.resume sets
    loop.run()
    trained = [[key for key, _ in batch] for batch in runner.batches]
    assert trained == full[5:7]
    assert dataset.loaded == [key for batch in full[5:7] for key in batch]  # 2 steps only


def _kill_loader_workers_after_first_step(name, runner):
    if name == 'before_train':  # what PreemptionCheckpointHook.before_run does
        runner.handler = signal.signal(signal.SIGUSR1, lambda *args: None)
    if name == 'after_train_iter' and len(runner.batches) == 1:
        for pid in {pid for _, pid in runner.batches[0]}:
            os.kill(pid, signal.SIGUSR1)  # a signal to the whole process group
    if name == 'after_train':
        signal.signal(signal.SIGUSR1, runner.handler)


def test_loader_workers_start_after_before_train_and_survive_a_signal(monkeypatch):
    dataset = _Recorder()
    runner = _Runner(_kill_loader_workers_after_first_step)
    loop = FastForwardIterBasedTrainLoop(
        runner, _loader(dataset, _sampler(monkeypatch, dataset), num_workers=1), max_iters=6)
    loop.run()
    assert len(runner.batches) == 6
    assert all(pid != os.getpid() for batch in runner.batches for _, pid in batch)


def test_the_stock_loop_started_its_workers_before_the_handler(monkeypatch):
    # The same with mmengine's loop: its workers were forked when it was built,
    # before any hook, so the signal kills them and the data loader fails.
    dataset = _Recorder()
    runner = _Runner(_kill_loader_workers_after_first_step)
    loop = IterBasedTrainLoop(runner, _loader(dataset, _sampler(monkeypatch, dataset),
                                              num_workers=1), max_iters=6)
    with pytest.raises(RuntimeError, match='DataLoader worker'):  # killed / exited
        loop.run()
    signal.signal(signal.SIGUSR1, runner.handler)
