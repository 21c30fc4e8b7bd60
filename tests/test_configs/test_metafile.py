"""configs/ael/metafile.yaml: the OpenMMLab model index of every shipped config.

No model presents the paper's numbers as its own results: this project has not trained the
configs, so there are no ``Results`` and no ``Weights``; the paper's mIoU is metadata
(``Metadata: Paper mIoU``) and equals the paper's tables, stated here, and the paper column of
configs/ael/README.md.
"""
import glob
import os.path as osp
import re

import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METAFILE = osp.join(REPO_ROOT, 'configs', 'ael', 'metafile.yaml')
ALGO_README = osp.join(REPO_ROOT, 'configs', 'ael', 'README.md')
CONFIG_FOLDERS = ('configs/ael', 'configs/ael_baselines', 'configs/ael_ablations')
PARTS = ('1_32', '1_16', '1_8', '1_4', '1_2')
# Hu et al., NeurIPS 2021: mIoU (DeepLabV3+ R101, mean of 5 splits) per partition.
PAPER = {
    ('ael', 'cityscapes'): (74.28, 75.83, 77.90, 79.01, 80.28),
    ('cutmix-mt', 'cityscapes'): (69.11, 72.13, 75.83, 77.24, 78.95),
    ('supervised', 'cityscapes'): (57.89, 62.96, 69.81, 74.23, 77.46),
    ('ael', 'voc12aug'): (76.97, 77.20, 77.57, 78.06, 80.29),
    ('supervised', 'voc12aug'): (70.14, 70.60, 73.12, 76.35, 77.21),
    # the ablation table: Cityscapes 1/32 and 1/16 only
    ('cutmix-mt+dr', 'cityscapes'): (70.27, 73.85),
    ('cutmix-mt+aes', 'cityscapes'): (71.65, 74.12),
    ('cutmix-mt+acm', 'cityscapes'): (70.49, 73.89),
    ('cutmix-mt+acp', 'cityscapes'): (69.69, 72.64),
}
NAME_RE = re.compile(r'^(?P<method>[\w+-]+?)_(?P<model>(original-)?deeplabv3plus)_r101-d8_8xb2-'
                     r'(18k|30k)_(?P<dataset>cityscapes|voc12aug)-(?P<part>1_\d+)-\d+x\d+$')


def _index():
    with open(METAFILE, encoding='utf-8') as f:
        return yaml.safe_load(f)


def _paper_miou(name):
    """The paper's number for a paper config's method and partition, or None."""
    match = NAME_RE.match(name)
    if match is None:
        return None
    numbers = PAPER.get((match['method'], match['dataset']))
    k = PARTS.index(match['part'])
    return numbers[k] if numbers is not None and k < len(numbers) else None


def test_model_index_imports_the_metafile_which_points_at_the_algorithm_readme():
    with open(osp.join(REPO_ROOT, 'model-index.yml'), encoding='utf-8') as f:
        assert yaml.safe_load(f) == {'Import': ['configs/ael/metafile.yaml']}
    index = _index()
    assert [c['Name'] for c in index['Collections']] == ['AEL']
    collection = index['Collections'][0]
    assert collection['README'] == 'configs/ael/README.md'
    assert osp.isfile(osp.join(REPO_ROOT, collection['README']))
    assert collection['Paper']['URL'] == 'https://arxiv.org/abs/2110.05474'


def test_every_config_is_indexed_and_every_indexed_config_exists():
    shipped = {osp.relpath(p, REPO_ROOT) for folder in CONFIG_FOLDERS
               for p in glob.glob(osp.join(REPO_ROOT, folder, '*.py'))}
    models = _index()['Models']
    indexed = [m['Config'] for m in models]
    assert len(indexed) == len(set(indexed))
    assert set(indexed) == shipped
    for model in models:
        assert osp.isfile(osp.join(REPO_ROOT, model['Config']))
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['In Collection'] == 'AEL'


def test_no_model_presents_the_papers_numbers_as_its_results():
    for model in _index()['Models']:
        assert 'Results' not in model, model['Name']
        assert 'Weights' not in model, model['Name']
        assert 'not trained' in model['Metadata']['Results Note'] or \
            'no results' in model['Metadata']['Results Note']


def test_paper_numbers_are_metadata_equal_to_the_papers_tables():
    models = {m['Name']: m for m in _index()['Models']}
    with_paper = {name for name in models if _paper_miou(name) is not None}
    # AEL in both network families, both baselines and the four ablations.
    assert len(with_paper) == 2 * 10 + 10 + 5 + 8
    for name, model in models.items():
        expected = _paper_miou(name)
        assert model['Metadata'].get('Paper mIoU') == expected, name
        if NAME_RE.match(name):
            family = NAME_RE.match(name)['model']
            network = model['Metadata']['Network']
            assert ("original's" in network) == (family == 'original-deeplabv3plus'), name


def test_algorithm_readme_has_one_row_per_paper_config_with_the_papers_number():
    with open(ALGO_README, encoding='utf-8') as f:
        text = f.read()
    for heading in ('# AEL', '## Introduction', '<!-- [ALGORITHM] -->', '## Abstract',
                    '## Results and models', '## Citation'):
        assert heading in text
    rows = {}
    for line in text.splitlines():
        link = re.search(r'\[config\]\(([^)]+)\.py\)', line)
        if line.startswith('|') and link:
            rows[osp.basename(link[1])] = [c.strip() for c in line.strip('|').split('|')]
    models = {m['Name'] for m in _index()['Models']}
    assert set(rows) == models
    for name, cells in rows.items():
        if NAME_RE.match(name) is None:
            continue
        expected = _paper_miou(name)
        assert cells[5] == ('—' if expected is None else f'{expected:.2f}'), name
        assert cells[6] == 'not trained yet', name
        family = NAME_RE.match(name)['model']
        assert ("original's" in cells[1]) == (family == 'original-deeplabv3plus'), name
