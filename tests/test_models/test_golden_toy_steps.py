"""4 seeded AEL toy training steps against the golden record.

The record, ``tests/golden/golden_toy_steps.json``, pins the step's values
(logged losses, confidence bank, ACM presence table, sums of the absolute
student and teacher parameters) as they were when it was written; a refactor
that means to keep the behaviour must keep them. The steps are those of
``tests/golden/make_golden_toy_steps.py`` (toy config at 32x32, one CPU
thread, fixed seeds, CPU kernels held at AVX2; see its docstring), which this
test runs again in a process of its own. Floats must agree to 1e-4 relative
(room for the rounding of other torch builds; a changed formula moves them by
far more), the presence table exactly.

To regenerate the record after an intended change of values (and say why in
the commit message)::

    python tests/golden/make_golden_toy_steps.py
"""
import importlib.util
import json
import math
import os.path as osp
import platform
import subprocess
import sys

import pytest

GOLDEN = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'golden')
RTOL = 1e-4
ATOL = 1e-6


def load_script():
    spec = importlib.util.spec_from_file_location(
        'make_golden_toy_steps', osp.join(GOLDEN, 'make_golden_toy_steps.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_close(actual, expected, what):
    assert math.isclose(actual, expected, rel_tol=RTOL, abs_tol=ATOL), \
        f'{what}: {actual!r} now, {expected!r} in the golden record'


@pytest.mark.skipif(platform.machine() not in ('x86_64', 'AMD64'),
                    reason='the record holds the values of x86-64 AVX2 kernels')
def test_toy_steps_match_the_golden_record(tmp_path):
    script = load_script()
    with open(script.RECORD) as f:
        record = json.load(f)
    assert record['config'] == script.CONFIG and record['seed'] == script.SEED
    expected_steps = record['steps']
    assert len(expected_steps) == script.NUM_STEPS == 4
    out = tmp_path / 'steps.json'
    run = subprocess.run([sys.executable, script.__file__, '--out', str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    steps = json.loads(out.read_text())
    assert len(steps) == len(expected_steps)
    for now, golden in zip(steps, expected_steps):
        step = f"step {golden['iter']}"
        assert now['iter'] == golden['iter']
        assert sorted(now['losses']) == sorted(golden['losses']), step
        for key, value in golden['losses'].items():
            assert_close(now['losses'][key], value, f'{step} {key}')
        assert len(now['confidence']) == len(golden['confidence'])
        for c, (a, e) in enumerate(zip(now['confidence'], golden['confidence'])):
            assert_close(a, e, f'{step} confidence of class {c}')
        assert now['presence'] == golden['presence'], f'{step} presence table'
        for key in ('student_abs_sum', 'teacher_abs_sum'):
            assert_close(now[key], golden[key], f'{step} {key}')
    # The record is informative: every AEL loss runs, the bank and table move.
    assert all('unsup.loss_ael' in s['losses'] and 'unsup.loss_ael_labeled' in s['losses']
               for s in expected_steps)
    assert expected_steps[0]['confidence'] != expected_steps[-1]['confidence']
    assert any('1' in row for row in expected_steps[-1]['presence'])


def test_the_steps_refuse_unpinned_kernels():
    """In this process the kernels are the CPU's own: the steps must not run."""
    script = load_script()
    if script.kernels_pinned():
        pytest.fail('the test process itself has the pinned kernel environment')
    with pytest.raises(RuntimeError, match='ONEDNN_MAX_CPU_ISA'):
        script.run_steps(1)
