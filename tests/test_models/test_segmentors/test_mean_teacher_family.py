"""The mean-teacher base, its two subclasses, and what the batch switches."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from ael_mmseg.models.segmentors import AELSegmentor, CutMixMeanTeacher, MeanTeacherSegmentor
from helpers.fake_batch import make_semi_batch, toy_model_cfg
from helpers.stock_tools import REPO_ROOT

SIZE = 32
NUM_CLASSES = 10
MT_CONFIG = f'{REPO_ROOT}/configs/ael_baselines/' \
    'cutmix-mt_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py'
SUP_CONFIG = f'{REPO_ROOT}/configs/ael_baselines/' \
    'supervised_deeplabv3plus_r18-d8_1xb4-600_longtail-toy-64x64.py'


def shipped_model(path):
    init_default_scope('mmseg')
    cfg = Config.fromfile(path).model
    cfg.data_preprocessor.size = (SIZE, SIZE)
    cfg.semi_train_cfg.update(warmup_iters=0, rampup_iters=0)
    return cfg


def build(cfg, **changes):
    cfg = copy.deepcopy(cfg)
    cfg.update(changes)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    return model


def batch(copy_paste=True, seed=0):
    return make_semi_batch(2, 1, SIZE, NUM_CLASSES, seed, copy_paste=copy_paste)


@pytest.fixture(autouse=True)
def past_warmup():
    MessageHub.get_current_instance().update_info('iter', 10)


def test_the_baseline_config_builds_the_sibling_class_without_ael_parts():
    model = build(shipped_model(MT_CONFIG))
    assert type(model) is CutMixMeanTeacher and isinstance(model, MeanTeacherSegmentor)
    assert not isinstance(model, AELSegmentor)
    for part in ('confidence_bank', 'copy_paste', 'finish_step'):
        assert not hasattr(model, part), part
    assert type(model.cutmix).__name__ == 'CutMix'
    supervised = build(shipped_model(SUP_CONFIG))
    assert type(supervised) is CutMixMeanTeacher
    assert supervised.semi_train_cfg['unsup_weight'] == 0.0


def test_cutmix_mean_teacher_loss_is_plain_ce_on_the_box_mixed_pseudo_labels():
    model = build(shipped_model(MT_CONFIG))
    seen = {}
    mix = model.cutmix.forward

    def recorded_mix(*args, **kwargs):
        seen['mixed'] = out = mix(*args, **kwargs)
        return out

    model.cutmix.forward = recorded_mix
    model.student.decode_head.register_forward_hook(
        lambda m, args, out: seen.__setitem__('logits', out.detach()))
    inputs, samples = batch(copy_paste=False)
    losses = model.loss(inputs, samples)
    assert {'unsup.loss_ce', 'unsup.loss_ce_labeled'} <= set(losses)
    assert not any('loss_ael' in key for key in losses)
    _, mixed_pred, _, box_mask = seen['mixed']
    assert 0 < box_mask.float().mean() < 1  # a real box
    logits = F.interpolate(seen['logits'], size=(SIZE, SIZE), mode='bilinear',
                           align_corners=model.student.align_corners)
    # Every pixel weighs the same: mean cross entropy over the non-ignored pixels.
    expected = F.cross_entropy(logits[2:], mixed_pred, ignore_index=255)
    torch.testing.assert_close(losses['unsup.loss_ce'], expected, rtol=1e-5, atol=1e-6)


def test_the_baseline_refuses_what_only_ael_has():
    model = build(shipped_model(MT_CONFIG))
    with pytest.raises(KeyError, match=r'paste_pipeline=None'):
        model.loss(*batch(copy_paste=True))
    cfg = shipped_model(MT_CONFIG)
    cfg.cutmix = dict(type='AdaptiveCutMix', num_classes=NUM_CLASSES)
    with pytest.raises(TypeError, match='AELSegmentor'):
        build(cfg)


def test_acp_follows_the_batch_alone():
    model = build(toy_model_cfg(SIZE))
    model.cutmix.resize_presence(4)
    calls = []
    paste = model.copy_paste.forward
    model.copy_paste.forward = lambda *args, **kwargs: calls.append(1) or paste(*args, **kwargs)
    model.loss(*batch(copy_paste=False))
    assert calls == []  # no paste sources, no ACP
    model.loss(*batch(copy_paste=True))
    assert calls == [1]
    without = build(toy_model_cfg(SIZE), copy_paste=None)
    without.cutmix.resize_presence(4)
    without.loss(*batch(copy_paste=False))
    with pytest.raises(ValueError, match=r'model.copy_paste is None.*paste_pipeline=None'):
        without.loss(*batch(copy_paste=True))


def test_ael_with_plain_cutmix_records_no_presence_but_the_bank():
    cfg = toy_model_cfg(SIZE)
    cfg.cutmix = dict(type='CutMix')  # ACM off, as the ablation configs do
    model = build(cfg)
    assert not model.uses_acm
    model.loss(*batch())
    record = model.step_record
    assert record.presence_indices is None and record.confidence_counts.sum() > 0
    model.finish_step()
    assert model.step_record is None and model.confidence_bank.num_updates.sum() > 0


def test_the_step_record_accumulates_over_forwards_and_is_cleared_once():
    model = build(toy_model_cfg(SIZE))
    model.cutmix.resize_presence(8)
    inputs, samples = batch(seed=1)
    model.loss(inputs, samples)
    first = copy.deepcopy(model.step_record)
    inputs2, samples2 = batch(seed=2)
    for sample in samples2:
        sample.set_metainfo(dict(sample_idx=sample.metainfo['sample_idx'] + 4))
    model.loss(inputs2, samples2)  # a second forward before the update (accumulation)
    record = model.step_record
    assert torch.all(record.confidence_counts > first.confidence_counts - 1)
    assert record.confidence_counts.sum() == 2 * first.confidence_counts.sum()
    assert record.presence_indices.tolist() == first.presence_indices.tolist() + [
        i + 4 for i in first.presence_indices.tolist()]
    model.discard_step()
    assert model.step_record is None
    model.finish_step()  # nothing staged: no update
    assert model.confidence_bank.num_updates.sum() == 0
