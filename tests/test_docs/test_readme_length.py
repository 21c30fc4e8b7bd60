"""The README stays a short overview: at most 200 lines, with the two commands as they are."""
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAX_LINES = 200
THE_TWO_COMMANDS = (
    'bash tools/run_demo.sh     '
    '# the main job: trains AEL on a small long-tailed dataset on the CPU',
    'bash tools/run_tests.sh    # the tests: lint + the whole suite (what .ci/run calls)',
)


def _readme_lines():
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read().splitlines()


def test_readme_has_at_most_200_lines():
    lines = _readme_lines()
    assert len(lines) <= MAX_LINES, (
        f'README.md has {len(lines)} lines; move detail into docs/en/ (at most {MAX_LINES})')


def test_readme_keeps_the_two_commands():
    lines = _readme_lines()
    for command in THE_TWO_COMMANDS:
        assert command in lines


def test_readme_has_its_sections():
    headings = [line for line in _readme_lines() if line.startswith('## ')]
    assert headings == ['## The two commands', '## Install on a GPU machine', '## Quick start',
                        '## What it registers', '## Results', '## Documentation', '## Citation',
                        '## License']
