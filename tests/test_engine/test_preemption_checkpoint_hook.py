"""PreemptionCheckpointHook: configuration errors name the problem; signal names resolve."""
import signal

import pytest

from ael_mmseg.engine.hooks import PreemptionCheckpointHook


def test_signal_names_and_numbers_resolve():
    hook = PreemptionCheckpointHook(signals=['SIGTERM', 'usr1', int(signal.SIGUSR2)])
    assert hook.signals == [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2]
    assert PreemptionCheckpointHook().signals == [signal.SIGTERM, signal.SIGUSR1]


@pytest.mark.parametrize('kwargs, message', [
    (dict(signals=['SIGKILL']), 'SIGKILL cannot be caught'),
    (dict(signals=['SIGFOO']), "unknown signal 'SIGFOO'"),
    (dict(signals='SIGTERM'), 'non-empty list of signal names'),
    (dict(signals=[]), 'non-empty list of signal names'),
    (dict(signals=[100000]), '100000 is not a signal number'),
    (dict(sync_interval=0), 'sync_interval must be an integer >= 1'),
    (dict(exit_code=0), r'exit_code must be in \[1, 255\]'),
    (dict(exit_code=256), r'exit_code must be in \[1, 255\]'),
])
def test_bad_configuration_is_refused_with_a_message_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreemptionCheckpointHook(**kwargs)


def test_handler_only_records_and_the_save_is_announced_for_the_agreed_iteration():
    hook = PreemptionCheckpointHook()

    class Runner:
        iter = 4

    runner = Runner()
    hook._handle(signal.SIGUSR1, None)
    assert hook.received == signal.SIGUSR1 and hook.stop_iter is None
    hook.before_train_iter(runner, batch_idx=4)  # one process: agreement every iteration
    assert hook.will_save_checkpoint(runner)
    runner.iter = 5
    assert not hook.will_save_checkpoint(runner)
