"""Fusion and ranking arithmetic against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reasoning.fusion import FusionSettings, fuse, leave_one_out, prompt_weights, weighted_lme
from reasoning.prompts import Fact, PromptBank
from reasoning.refine import Refiner


def test_weighted_log_mean_exp_by_hand():
    # tau = 0.1, scores 0.2 and 0.4, equal weights:
    # 0.1 * ln((e^2 + e^4) / 2) = 0.1 * ln((7.389056 + 54.598150) / 2) = 0.1 * ln(30.993603) = 0.343378
    assert weighted_lme([0.2, 0.4], [1, 1], 0.1) == pytest.approx(0.343378, abs=1e-6)
    # weights 3:1 towards 0.2: 0.1 * ln((3 e^2 + e^4) / 4) = 0.1 * ln(19.191330) = 0.295446
    assert weighted_lme([0.2, 0.4], [3, 1], 0.1) == pytest.approx(0.295446, abs=1e-6)
    # equal scores give that score whatever the weights; zero weights drop a prompt
    assert weighted_lme([0.3, 0.3, 0.3], [1, 5, 0.2], 0.05) == pytest.approx(0.3, abs=1e-12)
    assert weighted_lme([0.2, 0.9], [1, 0], 0.1) == pytest.approx(0.2, abs=1e-12)
    # limits: small tau -> max, large tau -> weighted mean
    assert weighted_lme([0.2, 0.4], [1, 1], 1e-4) == pytest.approx(0.4 - 1e-4 * math.log(2), abs=1e-6)
    assert weighted_lme([0.2, 0.4], [1, 3], 1e3) == pytest.approx(0.35, abs=1e-4)
    # numerically stable where a naive exp would overflow
    assert weighted_lme([50.0, 49.0], [1, 1], 0.01) == pytest.approx(50.0 - 0.01 * math.log(2), abs=1e-9)


def test_fuse_and_leave_one_out_by_hand():
    s = FusionSettings(temperature=0.1)
    # base 0.2, one enriched prompt 0.4: fused = 0.343378; without the prompt = 0.2 -> effect +0.143378
    assert fuse(0.2, [0.4], [1.0], s) == pytest.approx(0.343378, abs=1e-6)
    assert leave_one_out(0.2, np.array([0.4]), np.array([1.0]), s)[0] == pytest.approx(0.143378, abs=1e-6)
    # a prompt scoring below the base lowers the label: 0.1 ln((e^2 + e^0)/2) = 0.1 ln(4.194528) = 0.143378
    assert fuse(0.2, [0.0], [1.0], s) == pytest.approx(0.143378, abs=1e-6)
    assert leave_one_out(0.2, np.array([0.0]), np.array([1.0]), s)[0] == pytest.approx(0.143378 - 0.2, abs=1e-6)
    # base weight 0: the label is judged by its enriched prompts alone
    assert fuse(0.2, [0.4, 0.4], [1, 1], FusionSettings(temperature=0.1, base_weight=0.0)) == pytest.approx(0.4)


def test_reliability_weights_by_hand():
    s = FusionSettings(method="reliability", gamma=2.0, beta=0.5)
    w = prompt_weights(s, consistency=np.array([0.5, 0.5, -0.3, 0.9]), known=np.array([True, False, True, False]),
                       confidence=np.array([1.0, 0.4, 1.0, 1.0]))
    # 0.5^2 * 1 = 0.25 (known); 0.5^2 * 0.5 * 0.4 = 0.05 (predicted); negative consistency -> 0; 0.81 * 0.5 = 0.405
    assert w == pytest.approx([0.25, 0.05, 0.0, 0.405])
    lse = prompt_weights(FusionSettings(prompt_weight=0.7), np.array([0.1, -1.0]), np.array([True, False]), np.array([1, 0.1]))
    assert lse == pytest.approx([0.7, 0.7])
    with pytest.raises(ValueError):
        FusionSettings(method="max")
    with pytest.raises(ValueError):
        FusionSettings(temperature=0)


def _bank() -> PromptBank:
    """Three labels in 2-d: A at 0 deg, B at 90 deg, C at 180 deg; A has two prompts (10, 80 deg), B one (170 deg), C none."""
    def unit(deg):
        r = math.radians(deg)
        return [math.cos(r), math.sin(r)]

    base = np.array([unit(0), unit(90), unit(180)], dtype=np.float32)
    prompts = np.array([unit(10), unit(80), unit(170)], dtype=np.float32)
    facts = [Fact("has parent", "x", "known", None, 1.0), Fact("occurs in", "y", "predicted", -1.0, 0.5),
             Fact("has parent", "z", "known", None, 1.0)]
    return PromptBank("k", ["A", "B", "C"], ["A", "B", "C"], ["A, x", "A, y", "B, z"], facts,
                      np.array([0, 0, 1]), np.array([0, 2, 3, 3]), base, prompts)


def test_refiner_ranks_and_refines_by_hand():
    bank = _bank()
    audio = np.array([math.cos(math.radians(60)), math.sin(math.radians(60))], dtype=np.float32)
    s = FusionSettings(temperature=0.1)
    result = Refiner(bank, s, top_k=2).refine(audio)
    # base scores: cos 60 = 0.5 (A), cos 30 = 0.866 (B), cos 120 = -0.5 (C): top 2 are B then A
    assert result.baseline == pytest.approx([0.5, 0.866025, -0.5], abs=1e-5)
    assert list(result.top) == [1, 0]
    # A: base 0.5, prompts cos 50 = 0.642788 and cos 20 = 0.939693 -> 0.1 ln((e^5 + e^6.42788 + e^9.39693)/3)
    a = 0.1 * math.log((math.exp(5) + math.exp(6.427876) + math.exp(9.396926)) / 3)
    # B: base 0.866025, its prompt at 170 deg scores cos 110 = -0.342020: it lowers B
    b = 0.1 * math.log((math.exp(8.660254) + math.exp(-3.420201)) / 2)
    assert result.refined[0] == pytest.approx(a, abs=1e-5)
    assert result.refined[1] == pytest.approx(b, abs=1e-5)
    assert result.refined[2] == pytest.approx(-0.5, abs=1e-6)  # outside the top k: unchanged
    # A's prompt 'A, y' (score 0.94) lifts A above B, whose own prompt pulled it down
    assert result.refined[0] > result.refined[1]
    explained = Refiner(bank, s, top_k=2).explain(audio, result)
    assert explained[0]["prompts"][0]["prompt"] == "A, y" and explained[0]["prompts"][0]["effect"] > 0
    assert explained[0]["change"] == pytest.approx(a - 0.5, abs=1e-5)
    assert explained[1]["prompts"][0]["prompt"] == "B, z" and explained[1]["prompts"][0]["effect"] < 0


def cos_deg(d):
    return math.cos(math.radians(d))
