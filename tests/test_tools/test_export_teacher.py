"""ael_mmseg.apis.export and tools/model_converters/export_teacher.py: an AEL teacher as a
plain MMSeg model."""
import copy
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.registry import DATASETS, METRICS, MODELS

from ael_mmseg.apis import export_plain_config, export_segmentor
from ael_mmseg.apis.export import find_types, plain_config, plugin_type_names, to_stock
from ael_mmseg.datasets.longtail_toy import LONGTAIL_TOY_CLASSES
from ael_mmseg.utils.compat import load_checkpoint_file
from helpers.stock_tools import REPO_ROOT, TOY_CONFIG, run_stock_tool, tiny_toy_options

TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'export_teacher.py')


def _run_tool(*args, cwd):
    """The export tool in a fresh interpreter, as a user runs it; returns its output."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # This checkout's ael_mmseg, whatever is installed.
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    proc = subprocess.run([sys.executable, TOOL, *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0, f'export_teacher.py {" ".join(args)}:\n{proc.stdout[-4000:]}'
    return proc.stdout


@pytest.fixture(scope='module')
def run(tmp_path_factory, toy_root):
    """Two AEL iterations through the stock train script, then both exports: the teacher
    (and the plain config) through the library, the student through the command line."""
    root = tmp_path_factory.mktemp('export_teacher')
    work_dir = root / 'train'
    run_stock_tool('train.py', [TOY_CONFIG, '--work-dir', str(work_dir), '--cfg-options',
                                *tiny_toy_options(toy_root, max_iters=2, val_interval=2)],
                   cwd=str(root))
    paths = SimpleNamespace(
        root=root, work_dir=work_dir, ael_ckpt=str(work_dir / 'iter_2.pth'),
        # The train script dumps the merged config (data roots at toy_root).
        ael_cfg=str(work_dir / osp.basename(TOY_CONFIG)), teacher=str(root / 'teacher.pth'),
        student=str(root / 'student.pth'), plain_cfg=str(root / 'plain_config.py'))
    export_segmentor(paths.ael_ckpt, paths.teacher, config=paths.ael_cfg,
                     out_config=paths.plain_cfg)
    paths.tool_output = _run_tool(paths.ael_ckpt, paths.student, '--student', cwd=str(root))
    return paths


def _only_builtin_types(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_builtin_types(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_only_builtin_types(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, torch.Tensor))


def _ael_model(run, predict_on='teacher'):
    init_default_scope('mmseg')
    cfg = Config.fromfile(run.ael_cfg)
    cfg.model.semi_test_cfg = dict(predict_on=predict_on)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, run.ael_ckpt, map_location='cpu', strict=True)
    return model.eval()


def _ael_classes(run):
    return tuple(load_checkpoint_file(run.ael_ckpt)['meta']['dataset_meta']['classes'])


def _val_batch(plain_cfg):
    init_default_scope('mmseg')
    dataset = DATASETS.build(copy.deepcopy(plain_cfg.test_dataloader.dataset))
    return pseudo_collate([dataset[0], dataset[1]])


@pytest.mark.parametrize('which', ['teacher', 'student'])
def test_export_keeps_one_model_without_its_prefix(run, which):
    source = load_checkpoint_file(run.ael_ckpt)['state_dict']
    exported = torch.load(getattr(run, which), map_location='cpu', weights_only=True)
    assert set(exported) == {'state_dict', 'meta'}
    expected = {k[len(which) + 1:]: v for k, v in source.items() if k.startswith(f'{which}.')}
    assert list(exported['state_dict']) == list(expected)
    assert all(torch.equal(v, expected[k]) for k, v in exported['state_dict'].items())
    meta = exported['meta']
    assert meta['model'] == which and meta['iter'] == 2
    assert meta['source_checkpoint'] == osp.abspath(run.ael_ckpt)
    assert len(meta['dataset_meta']['classes']) == 10
    # Loadable by any weights-only torch.load, without the plugin's allow-list.
    assert _only_builtin_types(exported)


def test_teacher_and_student_exports_differ(run):
    teacher = torch.load(run.teacher, weights_only=True)['state_dict']
    student = torch.load(run.student, weights_only=True)['state_dict']
    assert teacher.keys() == student.keys()
    assert any(not torch.equal(teacher[k], student[k]) for k in teacher)


def test_plain_config_is_stock_mmseg_with_the_toy_data(run, toy_root):
    text = open(run.plain_cfg).read()
    assert 'ael_mmseg' not in text and 'custom_imports' not in text
    cfg = Config.fromfile(run.plain_cfg)
    assert not find_types(cfg.to_dict(), plugin_type_names())
    ael = Config.fromfile(run.ael_cfg)
    expected_model = ael.model.segmentor.to_dict()
    expected_model['data_preprocessor'] = ael.model.data_preprocessor.to_dict()
    # The plugin's OHEM loss (training only) becomes its stock base class.
    for head in ('decode_head', 'auxiliary_head'):
        loss = expected_model[head]['loss_decode']
        assert loss['type'] == 'ProbOhemCrossEntropyLoss'
        expected_model[head]['loss_decode'] = dict(type='CrossEntropyLoss',
                                                   loss_weight=loss['loss_weight'])
    assert cfg.model.to_dict() == expected_model
    assert cfg.val_cfg.type == 'ValLoop' and cfg.test_cfg.type == 'TestLoop'
    for key in ('val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        assert dataset.type == 'BaseSegDataset' and dataset.data_root == toy_root
        assert dataset.img_suffix == '.png'  # the plugin dataset's default, kept
        assert ael[key].dataset.type == 'LongTailToyDataset'
        assert tuple(dataset.metainfo.classes) == LONGTAIL_TOY_CLASSES
    assert cfg.test_evaluator.type == 'IoUMetric' and 'tail_classes' not in cfg.test_evaluator
    assert cfg.default_hooks.checkpoint.save_best == 'mIoU'


@pytest.mark.parametrize('which', ['teacher', 'student'])
def test_init_model_predicts_exactly_like_the_ael_model(run, which):
    plain = init_model(run.plain_cfg, getattr(run, which), device='cpu')
    assert type(plain).__name__ == 'EncoderDecoder'
    ael = _ael_model(run, predict_on=which)
    batch = _val_batch(plain.cfg)
    with torch.no_grad():
        expected = ael.test_step(copy.deepcopy(batch))
        got = plain.test_step(copy.deepcopy(batch))
        other = _ael_model(run, 'student' if which == 'teacher' else 'teacher').test_step(
            copy.deepcopy(batch))
    assert len(got) == len(expected) == 2
    for a, b, c in zip(got, expected, other):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
        # The comparison can tell the two models apart.
        assert not torch.equal(a.seg_logits.data, c.seg_logits.data)
    assert plain.dataset_meta['classes'] == _ael_classes(run)


def test_inferencer_matches_init_model(run, toy_root):
    image = sorted(glob.glob(osp.join(toy_root, 'img_dir', 'val', '*.png')))[0]
    inferencer = MMSegInferencer(model=run.plain_cfg, weights=run.teacher, device='cpu')
    result = inferencer(image, return_datasamples=True)
    prediction = result['predictions'] if isinstance(result, dict) else result
    model = init_model(run.plain_cfg, run.teacher, device='cpu')
    expected = inference_model(model, image)
    assert prediction.pred_sem_seg.data.shape == (1, 32, 32)
    assert torch.equal(prediction.pred_sem_seg.data, expected.pred_sem_seg.data)
    assert torch.allclose(prediction.seg_logits.data, expected.seg_logits.data)
    assert inferencer.model.dataset_meta['classes'] == _ael_classes(run)


def test_config_from_checkpoint_only_when_asked(run):
    out_cfg = str(run.root / 'from_meta.py')
    again = run.root / 'again.pth'
    with pytest.raises(ValueError, match='--config.*--config-from-checkpoint'):
        export_segmentor(run.ael_ckpt, again, out_config=out_cfg)
    assert not osp.exists(again) and not osp.exists(out_cfg)
    export_segmentor(run.ael_ckpt, again, out_config=out_cfg, config_from_checkpoint=True)
    assert Config.fromfile(out_cfg).to_dict() == Config.fromfile(run.plain_cfg).to_dict()


def test_command_line_never_executes_the_checkpoints_config_unasked(tmp_path):
    """A checkpoint whose stored config runs code: the tool stops, naming both options."""
    marker = tmp_path / 'executed'
    crafted = tmp_path / 'crafted.pth'
    torch.save(dict(state_dict={'teacher.w': torch.zeros(1)},
                    meta=dict(cfg=f'open({str(marker)!r}, "w").write("x")\nmodel = dict()\n')),
               crafted)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, TOOL, str(crafted), str(tmp_path / 'out.pth'),
                           '--out-config', str(tmp_path / 'plain.py')], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 2
    assert '--config CONFIG' in proc.stdout and '--config-from-checkpoint' in proc.stdout
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
    assert '--config-from-checkpoint' in subprocess.run(
        [sys.executable, TOOL, '--help'], env=env, text=True, stdout=subprocess.PIPE,
        timeout=300).stdout


def test_command_line_reports_what_it_wrote(run):
    # The student export of the fixture ran as `python tools/.../export_teacher.py`.
    assert 'wrote the student' in run.tool_output and run.student in run.tool_output


def test_export_plain_config_alone_matches_the_export(run):
    out_cfg = str(run.root / 'plain_only.py')
    export_plain_config(run.ael_cfg, out_cfg)
    assert Config.fromfile(out_cfg).to_dict() == Config.fromfile(run.plain_cfg).to_dict()


def test_export_arguments_are_checked_before_any_file_is_read(tmp_path):
    missing = tmp_path / 'missing.pth'
    with pytest.raises(ValueError, match="which must be one of .*'ema'"):
        export_segmentor(missing, tmp_path / 'out.pth', which='ema')
    with pytest.raises(ValueError, match='only make sense with out_config'):
        export_segmentor(missing, tmp_path / 'out.pth', config=TOY_CONFIG)
    assert not list(tmp_path.iterdir())


def test_checkpoint_without_teacher_keys_is_refused_by_name(run):
    # The exported checkpoint itself is a plain one: no `teacher.` keys.
    with pytest.raises(KeyError, match=r"teacher\.pth.*no 'teacher\.' keys"):
        export_segmentor(run.teacher, run.root / 'bad.pth')
    with pytest.raises(KeyError, match=r"no 'student\.' keys"):
        export_segmentor(run.teacher, run.root / 'bad.pth', which='student')
    assert not osp.exists(run.root / 'bad.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        export_segmentor(run.root / 'missing.pth', run.root / 'bad.pth')


def test_plain_config_needs_an_ael_config(run):
    with pytest.raises(KeyError, match='model.segmentor'):
        plain_config(Config(dict(model=dict(type='EncoderDecoder'))))


def test_plugin_class_without_stock_base_is_refused():
    init_default_scope('mmseg')
    with pytest.raises(TypeError, match='AdaptiveCutMix'):
        to_stock(dict(type='AdaptiveCutMix'), MODELS, 'model.cutmix')
    stock = to_stock(dict(type='PerClassIoUMetric', tail_classes=['a'],
                               iou_metrics=['mIoU']), METRICS, 'val_evaluator')
    assert stock == dict(type='IoUMetric', iou_metrics=['mIoU'])


def test_stock_test_script_evaluates_the_teacher_like_ael_validation(run):
    # Last: the stock script takes ~15 s on a loaded 2-core machine.
    log = run_stock_tool('test.py', [run.plain_cfg, run.teacher, '--work-dir',
                                     str(run.root / 'test')], cwd=str(run.root))
    match = re.search(r'Iter\(test\).*mIoU: ([0-9.]+)', log)
    assert match, log[-3000:]
    # The AEL run validated the same teacher on the same images at iteration 2.
    scalars = glob.glob(osp.join(run.work_dir, '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0]) if line.strip()]
    teacher_miou = [r['teacher/mIoU'] for r in records if 'teacher/mIoU' in r][-1]
    assert float(match.group(1)) == pytest.approx(teacher_miou, abs=0.01)
