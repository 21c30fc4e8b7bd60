"""What README.md and docs/ name exists: repository paths, config names, tool options, links.

Checked in every inline code span and fenced code block of README.md, docs/**/*.md and
configs/ael/README.md:

- a repository path (``configs/…``, ``tools/…``, ``ael_mmseg/…``, ``tests/…``, ``docs/…``,
  ``.ci/…``; ``_base_/…``, ``ael/…``, ``ael_baselines/…``, ``ael_ablations/…`` relative to
  ``configs/``) exists; ``*`` must match a file, ``{a,b}`` every alternative; a path the same
  document creates with ``cp SRC DST`` or ``mkdir -p DIR`` counts as existing (SRC must exist);
- a bare config file name (``{algorithm}_{model}_{N}xb{M}-…py``) is a file under ``configs/``;
- a ``--flag`` after ``tools/….py`` (or a launcher that passes it on to the stock
  ``train.py``) on one command line is an option of that tool's argparse source;
- a relative Markdown link points at an existing file, and its ``#anchor`` at a heading there.
"""
import glob
import importlib.util
import itertools
import os.path as osp
import re

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROOT_FILES = ('LICENSE', 'NOTICE')
ROOT_FILE_RE = re.compile(r'^[\w.-]+\.(toml|cff|cfg|yml)$')
PATH_RE = re.compile(
    r'(?<![\w./$:-])((?:\.ci|ael_mmseg|configs|tools|tests|docs|_base_|ael|ael_baselines'
    r'|ael_ablations)/(?:(?:[\w.*+-]|\{[\w.,+-]*\})+/?)*)')
CONFIG_NAME_RE = re.compile(r'(?<![\w./+-])([\w.+-]+_\d+xb\d+-[\w.+-]+\.py)(?![\w/])')
RELATIVE_TO_CONFIGS = ('_base_/', 'ael/', 'ael_baselines/', 'ael_ablations/')
TOOL_RE = re.compile(r'(?:\$MMSEG/|(?<![\w./-]))(tools/[\w/]+\.(?:py|sh))')
OPTION_RE = re.compile(r'(?<![\w-])(--[a-zA-Z][\w-]*)')
# Launchers whose options (after their positional arguments) go to the stock train.py.
STOCK_TRAIN = ('tools/train.py', 'tools/dist_train.sh', 'tools/slurm_train.sh')
STOCK_TEST = ('tools/test.py', 'tools/dist_test.sh')
LINK_RE = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
FENCE_RE = re.compile(r'^```[^\n]*\n(.*?)^```', re.MULTILINE | re.DOTALL)
INLINE_RE = re.compile(r'`([^`\n]+)`')


def doc_files():
    files = [osp.join(REPO_ROOT, 'README.md'), osp.join(REPO_ROOT, 'configs', 'ael', 'README.md')]
    files += sorted(glob.glob(osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    return files


def code_chunks(text):
    """Fenced blocks (as logical lines: backslash continuations joined) and inline spans."""
    chunks = []
    for block in FENCE_RE.findall(text):
        chunks += block.replace('\\\n', ' ').splitlines()
    prose = FENCE_RE.sub('', text)
    chunks += INLINE_RE.findall(prose)
    return chunks


def expand_braces(path):
    parts = re.split(r'(\{[^}]*\})', path)
    options = [p[1:-1].split(',') if p.startswith('{') else [p] for p in parts]
    return [''.join(combo) for combo in itertools.product(*options)]


def created_paths(chunks):
    """Paths that a document's own commands create: ``cp SRC DST`` and ``mkdir -p DIR``."""
    created, sources = set(), []
    for line in chunks:
        for command in re.split(r'&&|;', line):
            words = command.split()
            if words[:1] == ['cp'] and len(words) >= 3:
                args = [w for w in words[1:] if not w.startswith('-')]
                sources += args[:-1]
                created.add(args[-1].rstrip('/'))
            elif words[:2] == ['mkdir', '-p']:
                created.update(w.rstrip('/') for w in words[2:])
    return created, sources


def path_problems(token, created):
    """Why a path token does not name something in the repository ([] if it does)."""
    rel = token.rstrip('.:,')
    if rel.startswith(RELATIVE_TO_CONFIGS):
        rel = 'configs/' + rel
    problems = []
    for candidate in expand_braces(rel):
        if candidate.rstrip('/') in created:
            continue
        full = osp.join(REPO_ROOT, candidate)
        if '*' in candidate:
            if not glob.glob(full):
                problems.append(f'{candidate} (matches nothing)')
        elif not osp.exists(full):
            problems.append(candidate)
    return problems


def config_name_problems(name, config_names):
    return [] if name in config_names else [f'config {name}']


def stock_script(name):
    spec = importlib.util.find_spec('mmseg')
    if spec is None or not spec.submodule_search_locations:
        return None
    return osp.join(list(spec.submodule_search_locations)[0], '.mim', 'tools', name)


def tool_source(tool):
    """The file whose argparse options a ``--flag`` after ``tool`` must be among."""
    if tool in STOCK_TRAIN:
        return stock_script('train.py')
    if tool in STOCK_TEST:
        return stock_script('test.py')
    return osp.join(REPO_ROOT, tool)


def option_problems(line):
    problems = []
    matches = list(TOOL_RE.finditer(line))
    for k, match in enumerate(matches):
        tool = match.group(1)
        end = matches[k + 1].start() if k + 1 < len(matches) else len(line)
        rest = re.split(r'\||&&|;|\s#', line[match.end():end])[0]
        options = OPTION_RE.findall(rest)
        if not options:
            continue
        source = tool_source(tool)
        if source is None:
            continue  # mmseg not installed: the stock scripts cannot be read
        if not osp.isfile(source):
            problems.append(f'{tool} (no such tool)')
            continue
        with open(source, encoding='utf-8') as f:
            text = f.read()
        problems += [f'{tool} {opt}' for opt in options
                     if f"'{opt}'" not in text and f'"{opt}"' not in text]
    return problems


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[`*_]', '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(md_path):
    with open(md_path, encoding='utf-8') as f:
        text = FENCE_RE.sub('', f.read())
    return {slug(m) for m in re.findall(r'^#+\s+(.*)$', text, flags=re.MULTILINE)}


def link_problems(target, doc_path):
    if re.match(r'^[a-z]+:', target):
        return []
    path, _, anchor = target.partition('#')
    full = osp.normpath(osp.join(osp.dirname(doc_path), path)) if path else doc_path
    if not osp.exists(full):
        return [f'link {target}']
    if anchor and full.endswith('.md') and anchor not in anchors(full):
        return [f'link {target} (no such heading)']
    return []


def all_config_names():
    paths = glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    return {osp.basename(p) for p in paths}


def problems_of(text, doc_path, config_names=None):
    config_names = all_config_names() if config_names is None else config_names
    chunks = code_chunks(text)
    created, sources = created_paths(chunks)
    problems = [f'cp source {s}' for s in sources if not osp.exists(osp.join(REPO_ROOT, s))]
    for chunk in chunks:
        for match in PATH_RE.finditer(chunk):
            following = chunk[match.end():match.end() + 1]
            if following == '<' or '…' in match.group(1) or '...' in match.group(1):
                continue  # a placeholder, e.g. configs/ael/<config>.py
            problems += path_problems(match.group(1), created)
        for token in chunk.split():
            token = token.strip('`,;()[]\'"')
            if '/' not in token and (token in ROOT_FILES or ROOT_FILE_RE.match(token)):
                if not osp.exists(osp.join(REPO_ROOT, token)):
                    problems.append(token)
        for name in CONFIG_NAME_RE.findall(chunk):
            problems += config_name_problems(name, config_names)
        problems += option_problems(chunk)
    for target in LINK_RE.findall(FENCE_RE.sub('', text)):
        problems += link_problems(target, doc_path)
    return sorted(set(problems))


@pytest.mark.parametrize('doc', doc_files(), ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_everything_a_doc_names_exists(doc):
    with open(doc, encoding='utf-8') as f:
        text = f.read()
    assert problems_of(text, doc) == []


def test_the_docs_tree_has_one_file_per_topic():
    expected = {
        'get_started.md', 'user_guides/config_and_batch.md', 'user_guides/train_test_resume.md',
        'user_guides/own_data.md', 'user_guides/export_inference.md', 'advanced_guides/design.md',
        'notes/differences_from_original.md', 'notes/benchmarks.md', 'notes/faq.md',
        'notes/changelog.md', 'notes/security.md'}
    found = {osp.relpath(p, osp.join(REPO_ROOT, 'docs', 'en'))
             for p in glob.glob(osp.join(REPO_ROOT, 'docs', 'en', '**', '*.md'), recursive=True)}
    assert expected <= found


# ---- the checker itself finds what is wrong ------------------------------------------


def _doc(tmp_path, text):
    path = tmp_path / 'doc.md'
    path.write_text(text, encoding='utf-8')
    return problems_of(text, str(path))


def test_checker_finds_a_missing_path_and_config(tmp_path):
    text = ('Run `configs/ael/no_such_config.py` or `ael_mmseg/models/nothing.py`;\n'
            '`ael_nonet_r1-d8_8xb2-1k_nowhere-1_2-9x9.py`, '
            '`_base_/models/{ael_deeplabv3plus_r50-d8,nope}.py`, `configs/ael/zz_*.py`\n')
    assert _doc(tmp_path, text) == [
        'ael_mmseg/models/nothing.py', 'config ael_nonet_r1-d8_8xb2-1k_nowhere-1_2-9x9.py',
        'configs/_base_/models/nope.py', 'configs/ael/no_such_config.py',
        'configs/ael/zz_*.py (matches nothing)']


def test_checker_accepts_existing_paths_placeholders_and_copies(tmp_path):
    text = ('```bash\nmkdir -p configs/mine && cp configs/ael/'
            'ael_deeplabv3plus_r50-d8_4xb2-20k_custom-512x512.py \\\n    configs/mine/x.py\n'
            'python tools/train.py configs/mine/x.py --resume\n```\n'
            '`configs/ael/<config>.py`, `configs/_base_/datasets/semi_*.py`, '
            '`tools/{train,test}.py`, [guide](README.md)\n')
    (tmp_path / 'README.md').write_text('# x\n')
    assert _doc(tmp_path, text) == []


def test_checker_finds_unknown_tool_options(tmp_path):
    text = ('```bash\npython tools/dataset_converters/make_semi_splits.py plain d --partitions 1/8 '
            '--no-such-flag\nbash tools/run_tests.sh -k bank\n'
            'python tools/analysis_tools/nothing.py --x\n```\n')
    assert _doc(tmp_path, text) == [
        'tools/analysis_tools/nothing.py',
        'tools/analysis_tools/nothing.py (no such tool)',
        'tools/dataset_converters/make_semi_splits.py --no-such-flag']


def test_checker_finds_an_unknown_option_of_the_stock_train_script(tmp_path):
    if stock_script('train.py') is None:
        pytest.skip('mmsegmentation is not installed')
    text = '`bash tools/dist_train.sh CONFIG 8 --resume --resmue`\n'
    assert _doc(tmp_path, text) == ['tools/dist_train.sh --resmue']


def test_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / 'other.md').write_text('# Other page\n\n## Resume and pre-emption\n')
    text = ('[a](other.md#resume-and-pre-emption) [b](other.md#nothing) [c](missing.md) '
            '[d](https://example.org/x) [e](#top)\n\n# Top\n')
    assert _doc(tmp_path, text) == ['link missing.md', 'link other.md#nothing (no such heading)']


def test_checker_finds_a_copy_from_a_missing_file(tmp_path):
    text = '```bash\ncp configs/ael/not_there.py configs/mine/x.py\n```\n'
    assert _doc(tmp_path, text) == ['configs/ael/not_there.py',
                                    'cp source configs/ael/not_there.py']
