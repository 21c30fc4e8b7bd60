"""AELSegmentor.loss under autocast (the path of ``--amp`` / AmpOptimWrapper).

mmengine's AmpOptimWrapper refuses to be built without a GPU, so on the CPU
the mixed-precision step is exercised directly: ``model.loss`` under
``torch.autocast('cpu', dtype=torch.bfloat16)``, which is what
``AmpOptimWrapper.optim_context`` wraps the forward pass in.

The student is the toy config's DeepLabV3+ with dilation 1 everywhere and
slimmer channels: on CPUs without native bfloat16, dilated bfloat16
convolutions fall back to a reference kernel (about a minute per step). The
AEL code under test is unchanged.
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, OPTIM_WRAPPERS

from helpers.fake_batch import make_semi_batch, toy_model_cfg
from helpers.stock_tools import TOY_CONFIG

SIZE = 32
NUM_CLASSES = 10
LOSS_KEYS = ('sup.decode.loss_ce', 'sup.aux.loss_ce', 'unsup.loss_ael', 'unsup.loss_ael_labeled')


@pytest.fixture(scope='module')
def model_cfg():
    cfg = toy_model_cfg(SIZE)
    segmentor = cfg.segmentor
    segmentor.backbone.update(dilations=(1, 1, 1, 1), stem_channels=16, base_channels=16)
    segmentor.decode_head.update(dilations=(1, 1, 1, 1), in_channels=128, c1_in_channels=16)
    segmentor.auxiliary_head.update(in_channels=64)
    return cfg


@pytest.fixture(scope='module')
def bf16_step(model_cfg):
    """One step under autocast, shared by the tests (bfloat16 is slow on CPUs)."""
    return run_step(model_cfg, autocast=True)


def make_batch(num_labeled=2, num_pairs=1, seed=0):
    """A normalised batch with every AEL role."""
    return make_semi_batch(num_labeled, num_pairs, SIZE, NUM_CLASSES, seed)


def run_step(model_cfg, autocast: bool):
    """One ``model.loss`` from a fixed model, batch and random state.

    Returns:
        tuple: the losses, the model, and the dtypes seen inside the step.
    """
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.copy_student_to_teacher()
    model.cutmix.resize_presence(4)
    MessageHub.get_current_instance().update_info('iter', 10)
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen[name] = output.dtype
        return hook

    def record_loss_inputs(module, args, kwargs):
        seen.setdefault('unsup_conf', []).append(args[2].dtype)
        seen.setdefault('aes_rates', []).append(kwargs['sampling_rates'].dtype)

    model.student.decode_head.register_forward_hook(record('student_logits'))
    model.teacher.decode_head.register_forward_hook(record('teacher_logits'))
    model.unsup_loss.register_forward_pre_hook(record_loss_inputs, with_kwargs=True)
    inputs, samples = make_batch()
    torch.manual_seed(1)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        losses = model.loss(inputs, samples)
    return losses, model, seen


def test_losses_under_autocast_are_finite_float32_and_backpropagate(bf16_step):
    losses, model, seen = bf16_step
    # Autocast really ran the networks in bfloat16 ...
    assert seen['student_logits'] == seen['teacher_logits'] == torch.bfloat16
    # ... while every loss comes out as a finite float32 scalar.
    assert set(LOSS_KEYS) <= set(losses)
    for key in LOSS_KEYS:
        value = losses[key]
        assert value.dtype == torch.float32 and value.dim() == 0, key
        assert torch.isfinite(value), key
    sum(losses[k] for k in LOSS_KEYS).backward()
    grads = [p.grad for p in model.student.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_ael_quantities_stay_float32_under_autocast(bf16_step):
    _, model, seen = bf16_step
    # Bank statistics (Eq. 4) staged for the hook.
    sums, counts = (model.step_record.confidence_sums, model.step_record.confidence_counts)
    assert sums.dtype == counts.dtype == torch.float32
    assert torch.isfinite(sums).all() and torch.all(sums <= counts) and torch.all(sums >= 0)
    # Teacher confidences reaching the AEL loss (DR weights), and AES rates.
    assert seen['unsup_conf'] == [torch.float32, torch.float32]
    assert seen['aes_rates'] == [torch.float32, torch.float32]
    # pseudo_labels itself under autocast.
    inputs, _ = make_batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred, conf = model.pseudo_labels(inputs[:2])
    assert seen['teacher_logits'] == torch.bfloat16
    assert conf.dtype == torch.float32 and pred.dtype == torch.long
    assert conf.shape == pred.shape == (2, SIZE, SIZE)
    assert torch.all((conf > 0) & (conf <= 1))
    assert torch.all((pred >= 0) & (pred < NUM_CLASSES))


def test_autocast_loss_is_close_to_the_float32_loss(model_cfg, bf16_step):
    fp32, model32, seen32 = run_step(model_cfg, autocast=False)
    bf16, model16, _ = bf16_step
    assert seen32['student_logits'] == torch.float32
    for key in LOSS_KEYS:
        # Loose: the AES draws and ACM boxes follow the (rounded) argmaxes.
        assert bf16[key].item() == pytest.approx(fp32[key].item(), rel=0.15, abs=0.02), key
    # Same seed, same copy-paste: the staged pixel counts agree exactly, the
    # step confidences (Eq. 4, in [0, 1]) up to bfloat16 activations.
    sums32, counts32 = (model32.step_record.confidence_sums, model32.step_record.confidence_counts)
    sums16, counts16 = (model16.step_record.confidence_sums, model16.step_record.confidence_counts)
    assert torch.equal(counts16, counts32) and torch.all(counts32 > 0)
    assert torch.allclose(sums16 / counts16, sums32 / counts32, atol=0.05)


def test_toy_config_builds_with_amp_optim_wrapper():
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG)
    # The stock train script's --amp only accepts a plain OptimWrapper ...
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    # ... and turns it into this.
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg = Config.fromstring(cfg.pretty_text, '.py')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert OPTIM_WRAPPERS.get(cfg.optim_wrapper.type).__name__ == 'AmpOptimWrapper'
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'AELSegmentor'
    assert type(model.student).__name__ == 'EncoderDecoder'
