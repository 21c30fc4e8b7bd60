import math

import pytest
import torch
import torch.nn.functional as F

from ael_mmseg.models.utils import (ConfidenceBank, acm_class_probabilities,
                                    acp_class_probabilities, aes_sampling_rates)


def naive_statistics(logits, labels, num_classes, ignore_index=255):
    probs = F.softmax(logits.double(), dim=1)
    sums, counts = [0.0] * num_classes, [0] * num_classes
    n, _, h, w = logits.shape
    for b in range(n):
        for y in range(h):
            for x in range(w):
                c = int(labels[b, y, x])
                if c == ignore_index:
                    continue
                sums[c] += float(probs[b, c, y, x])
                counts[c] += 1
    return sums, counts


def test_batch_statistics_match_naive_loop():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    labels = torch.randint(0, 4, (2, 5, 6))
    labels[0, :2] = 255
    labels[labels == 3] = 1  # class 3 absent
    bank = ConfidenceBank(4)
    sums, counts = bank.batch_statistics(logits, labels)
    ref_sums, ref_counts = naive_statistics(logits, labels, 4)
    assert torch.allclose(sums.double(), torch.tensor(ref_sums, dtype=torch.float64), atol=1e-5)
    assert counts.tolist() == ref_counts
    assert counts[3] == 0 and sums[3] == 0


def test_eq7_update_with_bias_correction_and_absent_classes():
    tau = 0.9
    bank = ConfidenceBank(3, momentum=tau, init_confidence=0.0)
    assert bank.confidence.tolist() == [0.0, 0.0, 0.0]
    # step 1: classes 0 and 1 observed, class 2 absent
    bank.update(torch.tensor([1.6, 0.3, 0.0]), torch.tensor([2.0, 1.0, 0.0]))
    assert torch.allclose(bank.confidence, torch.tensor([0.8, 0.3, 0.0]))
    # step 2: class 0 observed only
    bank.update(torch.tensor([0.4, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]))
    raw0 = tau * (1 - tau) * 0.8 + (1 - tau) * 0.4
    expected0 = raw0 / (1 - tau**2)
    assert math.isclose(float(bank.confidence[0]), expected0, rel_tol=1e-5)
    assert math.isclose(float(bank.confidence[1]), 0.3, rel_tol=1e-5)  # kept, not decayed
    assert bank.num_updates.tolist() == [2.0, 1.0, 0.0]


def test_long_run_tends_to_plain_eq7_average():
    tau = 0.5
    bank = ConfidenceBank(1, momentum=tau)
    plain = 0.0  # the paper's average from a zero start
    for step in range(60):
        value = 0.2 + 0.01 * step
        bank.update(torch.tensor([value]), torch.tensor([1.0]))
        plain = tau * plain + (1 - tau) * value
    assert math.isclose(float(bank.confidence[0]), plain, rel_tol=1e-6)


def test_sampling_distributions_follow_their_equations():
    bank = ConfidenceBank(4, momentum=0.0)
    conf = torch.tensor([0.9, 0.5, 0.2, 0.99])
    bank.update(conf.clone(), torch.ones(4))
    assert torch.allclose(acm_class_probabilities(bank.confidence), torch.softmax(1 - conf, 0))
    allowed = torch.tensor([True, True, False, True])
    acp = acp_class_probabilities(bank.confidence, allowed)
    ref = torch.exp(torch.sqrt(1 - conf)) * allowed
    assert torch.allclose(acp, ref / ref.sum())
    assert acp[2] == 0
    beta = 2.0
    aes = aes_sampling_rates(bank.confidence, beta)
    ref = ((1 - conf) / (1 - conf).max())**beta
    assert torch.allclose(aes, ref)
    assert aes[2] == 1.0


def test_all_confident_bank_keeps_every_pixel():
    bank = ConfidenceBank(2, momentum=0.0)
    bank.update(torch.ones(2), torch.ones(2))
    assert aes_sampling_rates(bank.confidence, 1.0).tolist() == [1.0, 1.0]


def test_bank_is_in_state_dict_and_restores():
    bank = ConfidenceBank(3, momentum=0.5)
    bank.update(torch.tensor([0.5, 0.2, 0.0]), torch.tensor([1.0, 1.0, 0.0]))
    other = ConfidenceBank(3, momentum=0.5)
    other.load_state_dict(bank.state_dict())
    assert torch.equal(other.confidence, bank.confidence)


@pytest.mark.parametrize('kwargs, word', [(dict(num_classes=0), 'num_classes'),
                                          (dict(num_classes=3, momentum=1.0), 'momentum'),
                                          (dict(num_classes=3, init_confidence=2), 'init')])
def test_bad_arguments_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ConfidenceBank(**kwargs)
