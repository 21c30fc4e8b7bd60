import importlib.util
import os
import os.path as osp
import subprocess
import sys
from math import ceil

import pytest

from ael_mmseg.datasets.splits import (NUM_TRAIN_IMAGES, PARTITIONS, check_split_images,
                                       list_image_ids, make_split, read_split_file,
                                       resolve_partition, train_id_sources, train_image_ids,
                                       write_split)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'dataset_converters', 'make_semi_splits.py')
CITY_SUFFIX = '_leftImg8bit.png'

EXPECTED = {
    'cityscapes': {'1/32': 93, '1/16': 186, '1/8': 372, '1/4': 744, '1/2': 1488},
    'voc_aug': {'1/32': 331, '1/16': 662, '1/8': 1323, '1/4': 2646, '1/2': 5291},
    'voc': {'1/16': 92, '1/8': 183, '1/4': 366, '1/2': 732},
}


def _ids(n):
    return [f'img_{i:05d}' for i in range(n)]


@pytest.mark.parametrize('dataset', sorted(EXPECTED))
def test_partition_counts(dataset):
    total = NUM_TRAIN_IMAGES[dataset]
    assert total == {'cityscapes': 2975, 'voc_aug': 10582, 'voc': 1464}[dataset]
    assert PARTITIONS[dataset] == EXPECTED[dataset]
    ids = _ids(total)
    for partition, count in EXPECTED[dataset].items():
        # the published counts are ceil(total / denominator)
        assert count == ceil(total / int(partition.split('/')[1]))
        assert resolve_partition(partition, total, dataset) == count
        labeled, unlabeled = make_split(ids, count, seed=0)
        assert len(labeled) == count and len(unlabeled) == total - count


def test_make_split_properties():
    ids = _ids(300)
    labeled, unlabeled = make_split(ids, 37, seed=4)
    assert not set(labeled) & set(unlabeled)
    assert sorted(labeled + unlabeled) == ids
    assert labeled == sorted(labeled) and unlabeled == sorted(unlabeled)
    # reproducible, independent of the input order
    assert make_split(list(reversed(ids)), 37, seed=4) == (labeled, unlabeled)
    # folds (seed + k) differ
    folds = [tuple(make_split(ids, 37, seed=4 + k)[0]) for k in range(5)]
    assert len(set(folds)) == 5


def test_make_split_bad_args():
    with pytest.raises(ValueError, match='num_labeled'):
        make_split(_ids(5), 6, seed=0)
    with pytest.raises(ValueError, match='num_labeled'):
        make_split(_ids(5), 0, seed=0)
    with pytest.raises(ValueError, match="'a'"):
        make_split(['a', 'b', 'a'], 1, seed=0)


def test_resolve_partition():
    assert resolve_partition('2', 10) == 2
    assert resolve_partition('1/3', 10) == 4  # ceil on non-standard totals
    assert resolve_partition('1/8', 2975, 'cityscapes') == 372
    for bad in ('0', '11', 'x', '3/2', '1/0'):
        with pytest.raises(ValueError, match='partition'):
            resolve_partition(bad, 10)


def _write(path, text):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def test_read_split_file_formats(tmp_path):
    plain = _write(tmp_path / 'plain.txt', '# header\n2007_000032\n\n  2007_000039  \n# x\n')
    assert read_split_file(plain) == ['2007_000032', '2007_000039']
    u2pl = _write(
        tmp_path / 'u2pl.txt',
        'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png '
        'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png\n'
        'leftImg8bit/train/bremen/bremen_000001_000019_leftImg8bit.png\n'
        'zurich/zurich_000002_000019\n')
    assert read_split_file(u2pl, 'leftImg8bit/train', CITY_SUFFIX) == [
        'aachen/aachen_000000_000019', 'bremen/bremen_000001_000019', 'zurich/zurich_000002_000019'
    ]
    voc = _write(tmp_path / 'voc.txt',
                 'JPEGImages/2007_000032.jpg SegmentationClassAug/2007_000032.png\n')
    assert read_split_file(voc, 'JPEGImages', '.jpg') == ['2007_000032']


@pytest.mark.parametrize('text, lineno, match', [
    ('a\n\nb\n# c\na\n', 5, r'duplicate image id .a. \(first listed on line 1\)'),
    ('a\nb c d\n', 2, 'got 3 fields'),
    ('a\nleftImg8bit/val/x/x_1_leftImg8bit.png\n', 2, "not under 'leftImg8bit/train/'"),
    ('x_gtFine_labelTrainIds.png\n', 1, 'does not end with the image suffix'),
    ('a\n../etc/passwd\n', 2, 'valid image id'),
])
def test_read_split_file_errors(tmp_path, text, lineno, match):
    path = _write(tmp_path / 'bad.txt', text)
    with pytest.raises(ValueError, match=match) as info:
        read_split_file(path, 'leftImg8bit/train', CITY_SUFFIX)
    assert f'{path}, line {lineno}:' in str(info.value)


def test_read_split_file_empty(tmp_path):
    path = _write(tmp_path / 'empty.txt', '# nothing\n\n')
    with pytest.raises(ValueError, match='lists no image id'):
        read_split_file(path)


def _fake_cityscapes(root, cities=('aachen', 'bremen', 'zurich'), per_city=3):
    ids = []
    for city in cities:
        for k in range(per_city):
            image_id = f'{city}/{city}_{k:06d}_000019'
            _write(osp.join(root, 'leftImg8bit', 'train', image_id + CITY_SUFFIX), 'x')
            _write(osp.join(root, 'gtFine', 'train', image_id + '_gtFine_labelTrainIds.png'), 'x')
            ids.append(image_id)
    # not images of the split: other suffix, other split
    _write(osp.join(root, 'leftImg8bit', 'train', 'aachen', 'notes.txt'), 'x')
    _write(osp.join(root, 'leftImg8bit', 'train', 'aachen', '.hidden' + CITY_SUFFIX), 'x')
    _write(osp.join(root, 'leftImg8bit', 'val', 'lindau', 'lindau_0_0' + CITY_SUFFIX), 'x')
    return sorted(ids)


def test_list_image_ids_and_check(tmp_path):
    ids = _fake_cityscapes(str(tmp_path))
    img_dir = osp.join(str(tmp_path), 'leftImg8bit', 'train')
    assert list_image_ids(img_dir, CITY_SUFFIX) == ids
    assert train_image_ids('cityscapes', str(tmp_path)) == ids
    check_split_images(ids, img_dir, CITY_SUFFIX)
    missing = [f'nowhere/n_{k}' for k in range(12)]
    with pytest.raises(FileNotFoundError) as info:
        check_split_images(ids + missing, img_dir, CITY_SUFFIX)
    msg = str(info.value)
    assert '12 of 21 listed images are missing' in msg and '(and 2 more)' in msg
    assert osp.join(img_dir, 'nowhere/n_0' + CITY_SUFFIX) in msg
    assert 'n_9' in msg and 'n_10' not in msg
    with pytest.raises(FileNotFoundError, match='does not exist'):
        list_image_ids(osp.join(str(tmp_path), 'nope'), CITY_SUFFIX)


def test_ids_match_mmseg_dataset(tmp_path):
    """Our ids and files are what mmseg's BaseSegDataset lists and reads."""
    from mmseg.datasets import BaseSegDataset
    root = str(tmp_path)
    ids = _fake_cityscapes(root)
    kwargs = dict(data_root=root, img_suffix=CITY_SUFFIX,
                  seg_map_suffix='_gtFine_labelTrainIds.png',
                  data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                  metainfo=dict(classes=('a', 'b')), serialize_data=False)
    listed = BaseSegDataset(**kwargs)
    img_dir = osp.join(root, 'leftImg8bit', 'train')
    expected = [osp.join(img_dir, i + CITY_SUFFIX) for i in ids]
    assert sorted(d['img_path'] for d in listed.data_list) == expected

    labeled, unlabeled = make_split(ids, 4, seed=1)
    write_split(osp.join(root, 'splits'), labeled, unlabeled)
    from_file = BaseSegDataset(ann_file=osp.join(root, 'splits', 'labeled.txt'), **kwargs)
    assert [d['img_path'] for d in from_file.data_list] == \
        [osp.join(img_dir, i + CITY_SUFFIX) for i in labeled]
    assert all(osp.isfile(d['seg_map_path']) for d in from_file.data_list)


def test_write_split(tmp_path):
    out = str(tmp_path / 'split')
    paths = write_split(out, ['a', 'c'], ['b'], sources={'train': ['a', 'b'], 'aug': ['c']})
    names = [osp.basename(p) for p in paths]
    assert names == ['labeled.txt', 'unlabeled.txt', 'labeled_train.txt', 'labeled_aug.txt']
    contents = [open(p).read() for p in paths]
    assert contents == ['a\nc\n', 'b\n', 'a\n', 'c\n']
    with pytest.raises(ValueError, match='both labeled and unlabeled'):
        write_split(out, ['a'], ['a', 'b'])
    with pytest.raises(ValueError, match='whitespace'):
        write_split(out, ['a b'], ['c'])


def _fake_voc(root, train=('2007_000032', '2007_000039'), aug=('2008_000001', '2008_000002',
                                                               '2008_000003')):
    for i in train + aug:
        _write(osp.join(root, 'JPEGImages', i + '.jpg'), 'x')
    _write(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt'), '\n'.join(train) + '\n')
    _write(osp.join(root, 'ImageSets', 'Segmentation', 'aug.txt'), '\n'.join(aug) + '\n')
    return sorted(train + aug)


def test_train_ids_voc(tmp_path):
    root = str(tmp_path)
    ids = _fake_voc(root)
    assert train_image_ids('voc_aug', root) == ids
    assert train_id_sources('voc_aug', root) == {
        'train': ['2007_000032', '2007_000039'],
        'aug': ['2008_000001', '2008_000002', '2008_000003']
    }
    assert train_image_ids('voc', root) == ['2007_000032', '2007_000039']
    os.remove(osp.join(root, 'JPEGImages', '2008_000002.jpg'))
    with pytest.raises(FileNotFoundError, match='2008_000002.jpg'):
        train_image_ids('voc_aug', root)
    with pytest.raises(ValueError, match='dataset'):
        train_image_ids('ade', root)


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, CLI, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _cli_main():
    """The CLI's ``main`` in-process (a subprocess costs seconds of imports)."""
    spec = importlib.util.spec_from_file_location('make_semi_splits', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _read(path):
    with open(path) as f:
        return f.read().split()


def test_cli_end_to_end(tmp_path):
    root = str(tmp_path / 'cityscapes')
    ids = _fake_cityscapes(root)
    out = str(tmp_path / 'out')
    res = _run_cli('cityscapes', root, '--out-dir', out, '--folds', '3', '--seed', '7',
                   '--partitions', '2', '1/4')
    assert res.returncode == 0, res.stderr
    assert '9 training images found' in res.stdout  # not the full 2975
    lines = res.stdout.splitlines()
    assert lines[-2].split() == ['2', '2', '7', '3', osp.join(out, 'cityscapes', '2')]
    assert lines[-1].split() == ['1/4', '3', '6', '3', osp.join(out, 'cityscapes', '1_4')]
    for part, count in (('2', 2), ('1_4', 3)):
        for k in range(3):
            d = osp.join(out, 'cityscapes', part, f'fold{k}')
            labeled = _read(osp.join(d, 'labeled.txt'))
            unlabeled = _read(osp.join(d, 'unlabeled.txt'))
            assert len(labeled) == count and sorted(labeled + unlabeled) == ids
            # fold k is make_split with seed + k
            assert (labeled, unlabeled) == make_split(ids, count, 7 + k)
    assert sorted(os.listdir(osp.join(out, 'cityscapes', '2'))) == ['fold0', 'fold1', 'fold2']


def test_cli_import(tmp_path, capsys):
    main = _cli_main()
    root = str(tmp_path / 'cityscapes')
    ids = _fake_cityscapes(root)
    # a U2PL-style list: unlabeled = the other training images
    listed = _write(tmp_path / 'u2pl.txt',
                    ''.join(f'leftImg8bit/train/{i}{CITY_SUFFIX} gtFine/train/{i}_x.png\n'
                            for i in ids[:4]))
    main(['cityscapes', root, '--import', listed])
    d = osp.join(root, 'splits', 'cityscapes', 'imported_4')
    assert d in capsys.readouterr().out
    assert _read(osp.join(d, 'labeled.txt')) == ids[:4]
    assert _read(osp.join(d, 'unlabeled.txt')) == ids[4:]

    # a listed image that does not exist is named, nothing is written
    listed = _write(tmp_path / 'bad.txt', f'{ids[0]}\naachen/aachen_999999_000019\n')
    with pytest.raises(SystemExit) as info:
        main(['cityscapes', root, '--import', listed, '--name', 'bad'])
    assert 'aachen/aachen_999999_000019' + CITY_SUFFIX in str(info.value.code)
    assert not osp.exists(osp.join(root, 'splits', 'cityscapes', 'bad'))

    # an existing image outside the training set (e.g. val) is refused
    listed = _write(tmp_path / 'val.txt', 'leftImg8bit/val/lindau/lindau_0_0' + CITY_SUFFIX)
    with pytest.raises(SystemExit, match='not under'):
        main(['cityscapes', root, '--import', listed])


def test_cli_voc_aug_sources(tmp_path):
    root = str(tmp_path / 'VOC2012')
    ids = _fake_voc(root)
    _cli_main()(['voc_aug', root, '--folds', '1', '--partitions', '3'])
    d = osp.join(root, 'splits', 'voc_aug', '3', 'fold0')
    labeled = _read(osp.join(d, 'labeled.txt'))
    assert len(labeled) == 3 and sorted(labeled + _read(osp.join(d, 'unlabeled.txt'))) == ids
    by_source = _read(osp.join(d, 'labeled_train.txt')) + _read(osp.join(d, 'labeled_aug.txt'))
    assert sorted(by_source) == labeled

    # importing a VOC val image (present in JPEGImages, not a training id) is refused
    _write(osp.join(root, 'JPEGImages', '2007_000033.jpg'), 'x')
    listed = _write(osp.join(str(tmp_path), 'list.txt'), '2007_000033\n2008_000001\n')
    with pytest.raises(SystemExit, match=r'1 listed images are not voc_aug training .*2007_000033'):
        _cli_main()(['voc_aug', root, '--import', listed])


def test_cli_bad_partition(tmp_path):
    root = str(tmp_path / 'cityscapes')
    _fake_cityscapes(root)
    with pytest.raises(SystemExit, match="partition '50' gives 50 labeled images"):
        _cli_main()(['cityscapes', root, '--partitions', '50'])


def test_cli_refuses_a_partition_without_unlabeled_images(tmp_path):
    root = str(tmp_path / 'cityscapes')
    _fake_cityscapes(root)
    with pytest.raises(SystemExit, match="partition '9' labels all 9 training images"):
        _cli_main()(['cityscapes', root, '--partitions', '2', '9'])
    assert not osp.exists(osp.join(root, 'splits'))  # not even the valid partition


def test_cli_refuses_plain_options_for_named_datasets(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _cli_main()(['voc', str(tmp_path), '--seg-map-suffix', '_mask.png'])
    assert '--seg-map-suffix is for the plain layout only' in capsys.readouterr().err
