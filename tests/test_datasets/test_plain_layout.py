"""make_semi_splits.py plain: checks, splits and class frequencies of a plain-layout folder."""
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from ael_mmseg.datasets.plain_layout import (image_size, label_counts, read_class_frequencies,
                                             select_tail_classes)
from ael_mmseg.datasets.splits import make_split
from helpers.plain_dataset import DEFECT_CLASSES, make_plain_dataset, write_user_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'dataset_converters', 'make_semi_splits.py')
TEMPLATE = osp.join(REPO, 'configs', 'ael', 'ael_deeplabv3plus_r50-d8_4xb2-20k_custom-512x512.py')
SUFFIXES = ['--img-suffix', '.jpg', '--seg-map-suffix', '_mask.png']


def _cli_main():
    spec = importlib.util.spec_from_file_location('make_semi_splits', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


main = _cli_main()


@pytest.fixture
def root(tmp_path):
    make_plain_dataset(tmp_path / 'defects', num_train=9, num_val=3, size=(24, 32), seed=1)
    return str(tmp_path / 'defects')


def _split(root, *extra, classes=DEFECT_CLASSES):
    return main(['plain', root, '--classes', *classes, *SUFFIXES, *extra])


def _mask_path(root, split, sample_id):
    return osp.join(root, 'ann_dir', split, sample_id + '_mask.png')


def _counts_by_hand(root, ids, num_classes):
    """Pixels per class, counted directly from the PNGs."""
    total = np.zeros(num_classes, np.int64)
    for i in ids:
        label = np.array(Image.open(_mask_path(root, 'train', i)))
        total += np.bincount(label.ravel(), minlength=256)[:num_classes]
    return total


def _lines(path):
    with open(path) as f:
        return f.read().split()


def test_plain_splits_and_frequencies(root, capsys):
    _split(root, '--partitions', '3', '1/2', '--folds', '2', '--seed', '5', '--tail-share',
           '0.1')
    out = capsys.readouterr().out
    assert "9 training and 3 val images, 4 classes ['metal', 'rust', 'scratch', 'dent']" in out
    assert '12 masks checked' in out
    ids = sorted(f[:-4] for f in os.listdir(osp.join(root, 'img_dir', 'train')))
    for partition, count in (('3', 3), ('1_2', 5)):  # ceil(9 / 2)
        for fold in range(2):
            folder = osp.join(root, 'splits', 'plain', partition, f'fold{fold}')
            labeled = _lines(osp.join(folder, 'labeled.txt'))
            unlabeled = _lines(osp.join(folder, 'unlabeled.txt'))
            assert (labeled, unlabeled) == make_split(ids, count, 5 + fold)
            assert len(labeled) == count
            with open(osp.join(folder, 'class_frequencies.json')) as f:
                report = json.load(f)
            expected = _counts_by_hand(root, labeled, 4)
            assert [c['pixels'] for c in report['per_class']] == expected.tolist()
            assert report['labeled_pixels'] == expected.sum() == count * 24 * 32  # no 255 here
            assert report['classes'] == list(DEFECT_CLASSES)
            # tail: rarest first while the running share stays <= 10% (at least one class)
            order = sorted(range(4), key=lambda c: (expected[c], c))
            tail, running = [], 0
            for c in order:
                running += expected[c]
                if tail and running > 0.1 * expected.sum():
                    break
                tail.append(DEFECT_CLASSES[c])
            assert report['tail_classes'] == tail
            assert report['rank'] == [DEFECT_CLASSES[c] for c in order]
            assert f'{partition}/fold{fold}: {tail[0]} ' in out
            assert read_class_frequencies(osp.join(folder, 'class_frequencies.json')) == report
    assert out.splitlines()[3].split()[:4] == ['3', '3', '6', '2']


def test_frequency_report_fields(root):
    _split(root, '--partitions', '4', '--folds', '1')
    report = read_class_frequencies(osp.join(root, 'splits', 'plain', '4', 'fold0',
                                             'class_frequencies.json'))
    labeled = _lines(osp.join(root, 'splits', 'plain', '4', 'fold0', 'labeled.txt'))
    masks = [np.array(Image.open(_mask_path(root, 'train', i))) for i in labeled]
    for entry in report['per_class']:
        c = entry['id']
        holding = [m for m in masks if (m == c).any()]
        assert entry['images'] == len(holding)
        area = np.mean([(m == c).mean() for m in holding]) if holding else 0.0
        assert entry['area_when_present'] == pytest.approx(area, abs=1e-7)
        assert entry['share'] == pytest.approx(entry['pixels'] / report['labeled_pixels'])
    assert report['absent_classes'] == [e['name'] for e in report['per_class']
                                        if e['pixels'] == 0]


def test_select_tail_classes():
    assert select_tail_classes([900, 60, 30, 10], 0.05) == [3, 2]  # 1% + 3% <= 5% < +6%
    assert select_tail_classes([900, 60, 30, 10], 0.01) == [3]
    assert select_tail_classes([500, 500], 0.05) == [0]  # the rarest, always; ties by id
    assert select_tail_classes([100, 0, 3], 0.05) == [1, 2]
    with pytest.raises(ValueError, match='tail_share'):
        select_tail_classes([1, 2], 1.0)


def test_label_counts_matches_mmseg_load_annotations(tmp_path):
    from mmseg.datasets.transforms import LoadAnnotations
    label = np.array([[0, 1, 2, 255], [3, 3, 9, 0]], np.uint8)
    path = str(tmp_path / 'm.png')
    Image.fromarray(label).save(path)
    for reduce_zero_label in (False, True):
        loaded = LoadAnnotations(reduce_zero_label=reduce_zero_label)(
            dict(seg_map_path=path, reduce_zero_label=reduce_zero_label, seg_fields=[]))
        gt = loaded['gt_seg_map']
        counts, bad = label_counts(label, 3, 255, reduce_zero_label)
        assert counts.tolist() == [int((gt == c).sum()) for c in range(3)]
        # what mmseg would hand over as class >= 3 (and not ignored), in file values
        expected_bad = sorted({int(v) for v, g in zip(label.ravel(), gt.ravel())
                               if g != 255 and g >= 3})
        assert bad == expected_bad


def test_image_size_follows_mmcv_exif_rotation(tmp_path):
    import mmcv
    path = str(tmp_path / 'portrait.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path, exif=exif)
    with open(path, 'rb') as f:  # what LoadImageFromFile does (cv2 backend, 'color')
        height, width = mmcv.imfrombytes(f.read(), flag='color', backend='cv2').shape[:2]
    assert (width, height) == image_size(path) == (20, 30)


def _error(*args, **kwargs):
    with pytest.raises(SystemExit) as info:
        _split(*args, **kwargs)
    return str(info.value.code)


def _nothing_written(root):
    return not osp.exists(osp.join(root, 'splits'))


def test_mask_value_outside_classes_is_named(root):
    path = _mask_path(root, 'train', 'part_004')
    label = np.array(Image.open(path))
    label[0, :3] = [4, 7, 255]  # 255 is ignored, 4 and 7 are not classes
    Image.fromarray(label).save(path)
    msg = _error(root, '--partitions', '3')
    assert f'{path}: [4, 7]' in msg and 'outside [0, 4)' in msg and 'ignore_index=255' in msg
    assert _nothing_written(root)
    # one class more and the same file is fine... up to 7
    msg = _error(root, '--partitions', '3', classes=[*DEFECT_CLASSES, 'hole'])
    assert f'{path}: [7]' in msg


def test_val_masks_are_checked_too(root):
    path = _mask_path(root, 'val', 'check_001')
    Image.fromarray(np.full((24, 32), 9, np.uint8)).save(path)
    msg = _error(root, '--partitions', '3')
    assert f'{path}: [9]' in msg and _nothing_written(root)


def test_image_without_mask_is_named(root):
    os.remove(_mask_path(root, 'train', 'part_002'))
    msg = _error(root, '--partitions', '3')
    image = osp.join(root, 'img_dir', 'train', 'part_002.jpg')
    assert f'1 of 9 images have no mask: {image}' in msg
    assert _mask_path(root, 'train', 'part_002') in msg and '--import' in msg
    assert _nothing_written(root)


def test_wrong_suffix_names_the_suffixes_found(root):
    with pytest.raises(SystemExit) as info:
        main(['plain', root, '--classes', *DEFECT_CLASSES, '--partitions', '3'])  # .jpg/.png
    msg = str(info.value.code)
    assert '9 of 9 images have no mask' in msg
    assert "has part_000_mask.png: is the mask suffix '_mask.png' (now '.png')?" in msg
    with pytest.raises(SystemExit, match=r"no \*\.png image .*'\.jpg' \(9\)"):
        main(['plain', root, '--classes', *DEFECT_CLASSES, '--img-suffix', '.png',
              '--partitions', '3'])


def test_mask_size_differs_from_image(root):
    path = _mask_path(root, 'train', 'part_006')
    Image.fromarray(np.zeros((32, 24), np.uint8)).save(path)  # transposed
    msg = _error(root, '--partitions', '3')
    assert f'{path} is 24x32, its image' in msg and 'part_006.jpg 32x24' in msg
    assert _nothing_written(root)


def test_colour_mask_is_refused(root):
    path = _mask_path(root, 'train', 'part_000')
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(path)
    msg = _error(root, '--partitions', '3')
    assert path in msg and 'single-channel' in msg


def test_empty_labeled_split_is_refused(root):
    assert "partition '0' gives 0 labeled images" in _error(root, '--partitions', '0')
    assert 'unlabeled split would be empty' in _error(root, '--partitions', '9')
    # labeled masks that hold only ignored pixels
    for k in range(9):
        Image.fromarray(np.full((24, 32), 255, np.uint8)).save(
            _mask_path(root, 'train', f'part_{k:03d}'))
    msg = _error(root, '--partitions', '2', '--folds', '1')
    assert 'labeled split plain/2/fold0' in msg and 'hold no class pixel' in msg
    assert _nothing_written(root)


def test_import_needs_masks_only_for_labeled(root, tmp_path, capsys):
    for k in (5, 6, 7, 8):  # unlabeled images may come without masks
        os.remove(_mask_path(root, 'train', f'part_{k:03d}'))
    listed = tmp_path / 'labeled.txt'
    listed.write_text('img_dir/train/part_000.jpg\npart_001\npart_003\n')
    _split(root, '--import', str(listed), '--name', 'mine')
    folder = osp.join(root, 'splits', 'plain', 'mine')
    assert _lines(osp.join(folder, 'labeled.txt')) == ['part_000', 'part_001', 'part_003']
    assert len(_lines(osp.join(folder, 'unlabeled.txt'))) == 6
    report = read_class_frequencies(osp.join(folder, 'class_frequencies.json'))
    assert report['num_images'] == 3
    assert 'mine: ' in capsys.readouterr().out
    listed.write_text('part_000\npart_099\n')
    msg = _error(root, '--import', str(listed), '--name', 'bad')
    assert "['part_099']" in msg


def _user_config(tmp_path, classes, **values):
    """The template with its class block edited, as a user would."""
    return write_user_config(TEMPLATE, str(tmp_path / 'my_config.py'), classes=tuple(classes),
                             seg_map_suffix='_mask.png', stuff_classes=(classes[0], ), **values)


def test_config_classes_and_num_classes_must_agree(root, tmp_path):
    config = _user_config(tmp_path, DEFECT_CLASSES, num_classes=5)
    with pytest.raises(SystemExit) as info:
        main(['plain', root, '--config', config, '--partitions', '3'])
    msg = str(info.value.code)
    assert 'model.segmentor.decode_head.num_classes=5' in msg and '4 classes' in msg
    # the palette of the template has 4 colours: 3 classes disagree with it
    config = _user_config(tmp_path, DEFECT_CLASSES[:3])
    with pytest.raises(SystemExit, match='3 classes but the palette has 4 colours'):
        main(['plain', root, '--config', config, '--partitions', '3'])
    assert _nothing_written(root)


def test_config_supplies_classes_and_suffixes(root, tmp_path, capsys):
    config = _user_config(tmp_path, DEFECT_CLASSES)
    main(['plain', root, '--config', config, '--partitions', '3', '--folds', '1'])
    out = capsys.readouterr().out
    assert "4 classes ['metal', 'rust', 'scratch', 'dent']" in out
    assert 'reads data_root=' in out  # the template's data_root is not this root
    assert osp.isfile(osp.join(root, 'splits', 'plain', '3', 'fold0', 'class_frequencies.json'))
    labeled = osp.join(root, 'splits', 'plain', '1_8', 'fold0', 'labeled.txt')
    assert f'trains on {labeled}, which this run did not write' in out  # split = '1_8/fold0'
    main(['plain', root, '--config', config, '--partitions', '1/8', '--folds', '1'])
    assert 'did not write' not in capsys.readouterr().out


def test_plain_options_are_refused_for_named_datasets(tmp_path):
    with pytest.raises(SystemExit):
        main(['cityscapes', str(tmp_path), '--classes', 'a'])
    with pytest.raises(SystemExit):
        main(['plain', str(tmp_path), '--partitions', '1'])  # no --classes / --config
