"""configs/ael/metafile.yaml: OpenMMLab model index of the paper configs."""
import os.path as osp
import re

import yaml

from helpers.stock_tools import REPO_ROOT

METAFILE = osp.join(REPO_ROOT, 'configs', 'ael', 'metafile.yaml')


def _paper_ael_rows():
    """The paper's AEL rows of the README tables: {dataset: [mIoU per partition]}."""
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    tables = {}
    headers = (('cityscapes', '| Cityscapes | 1/32 |'), ('voc12aug', '| VOC aug | 1/32 |'))
    for dataset, header in headers:
        start = text.index(header)
        row = re.search(r'^\| AEL \|(.*)\|$', text[start:], flags=re.MULTILINE)
        tables[dataset] = [float(v) for v in row[1].split('|')]
    return tables


def test_model_index_lists_every_paper_config_with_the_papers_numbers():
    with open(osp.join(REPO_ROOT, 'model-index.yml')) as f:
        assert yaml.safe_load(f) == {'Import': ['configs/ael/metafile.yaml']}
    with open(METAFILE) as f:
        index = yaml.safe_load(f)
    assert [c['Name'] for c in index['Collections']] == ['AEL']
    assert index['Collections'][0]['Paper']['URL'] == 'https://arxiv.org/abs/2110.05474'
    models = {m['Name']: m for m in index['Models']}
    paper = _paper_ael_rows()
    expected = set()
    settings = (('cityscapes', '18k', '769x769'), ('voc12aug', '30k', '513x513'))
    for dataset, iters, crop in settings:
        for k, part in enumerate(('1_32', '1_16', '1_8', '1_4', '1_2')):
            name = f'ael_deeplabv3plus_r101-d8_8xb2-{iters}_{dataset}-{part}-{crop}'
            expected.add(name)
            model = models[name]
            assert model['In Collection'] == 'AEL'
            assert model['Config'] == f'configs/ael/{name}.py'
            assert osp.isfile(osp.join(REPO_ROOT, model['Config']))
            assert model['Results'][0]['Metrics']['mIoU'] == paper[dataset][k]
            assert model['Results'][0]['Task'] == 'Semantic Segmentation'
            # the numbers are marked as the paper's, and no weights are claimed
            assert 'paper' in model['Metadata']['Results Source']
            assert 'not reproduced' in model['Metadata']['Results Source']
            assert 'Weights' not in model
    assert set(models) == expected
