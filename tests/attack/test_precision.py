"""AttackConfig.precision (issue 30): the arithmetic of the search's candidate scoring,
never of a verdict. "fp32" / "tf32" trace the forward at matmul precision "highest" /
"tensorfloat32"; "bf16" scores on bfloat16 weights and images; every final record is
judged again at float32 ("highest"), so a bf16 claim float32 rejects is "unverified".
"""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.attack import AttackConfig, attack
from deattack.attack.config import PRECISIONS
from deattack.attack.fitness import make_fitness
from deattack.attack.problems import ProblemArrays
from deattack.models.lenet import LeNet
from deattack.victims.victim import Victim

# Tiny budget: every distinct config compiles anew.
PROBE_CONFIG = AttackConfig(population_size=8, max_generations=1, slots=2)


@pytest.mark.parametrize("value", ["fp16", "FP32", "", None, 32])
def test_an_unknown_precision_is_a_value_error_naming_the_field(value):
    with pytest.raises(ValueError, match="precision"):
        AttackConfig(precision=value)


def test_bf16_refuses_the_incremental_forward():
    with pytest.raises(ValueError, match="precision='bf16'.*forward='full'"):
        AttackConfig(precision="bf16", forward="incremental")


def test_bf16_refuses_a_callback_victim():
    victim = Victim.from_callback(lambda images: np.zeros((len(images), 2), np.float32), num_classes=2)
    with pytest.raises(ValueError, match="precision='bf16' needs a JAX victim"):
        make_fitness(dataclasses.replace(PROBE_CONFIG, precision="bf16"), victim.apply_fn)


def test_the_default_precision_keeps_every_search_key():
    """Stores written before the field existed keep their keys (and
    tests/sweep/test_committed_stores.py checks the committed ones)."""
    assert "precision" not in AttackConfig().search_key()
    assert AttackConfig(precision="default").search_key() == AttackConfig().search_key()
    assert AttackConfig(precision="bf16").search_key()["precision"] == "bf16"


def _probe():
    """A victim that records (matmul precision, image dtype) whenever it is traced."""
    seen = []

    def fn(images):
        seen.append((jax.config.jax_default_matmul_precision, images.dtype))
        return jnp.zeros((images.shape[0], 2), images.dtype) + images[:, 0, 0, :2]

    return Victim.from_fn(fn, name="precision-probe"), seen


@pytest.mark.allow_rank_promotion
@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_the_search_traces_at_its_precision_and_verdicts_at_float32(precision):
    victim, seen = _probe()
    config = dataclasses.replace(PROBE_CONFIG, precision=precision)
    results = attack(victim, np.full((2, 4, 4, 3), 7, np.uint8), np.zeros(2, np.int64), config)
    assert len(results.records) == 2
    dtype = jnp.bfloat16 if precision == "bf16" else jnp.float32
    search = {(PRECISIONS[precision], jnp.dtype(dtype))}
    verdict = {("highest", jnp.dtype(jnp.float32))}
    shape_checks = {(None, jnp.dtype(jnp.float32))}  # the api's eval_shape checks compute nothing
    assert search | verdict <= set(seen) <= search | verdict | shape_checks, seen


def _lenet_inputs():
    module = LeNet()
    variables = module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.float32))
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (2, 32, 32, 3)), jnp.float32)
    genes = np.concatenate([rng.integers(0, 32, (2, 8, 2)), rng.uniform(0, 255, (2, 8, 3))], axis=-1)
    problems = ProblemArrays(images=images, labels=jnp.zeros(2, jnp.int32), targets=jnp.full(2, -1, jnp.int32))
    return Victim.from_flax(module, variables), jnp.asarray(genes, jnp.float32), problems


def test_bf16_logits_differ_from_fp32_by_bf16_rounding_only():
    """bf16 really runs (the logits differ) and stays within a few bf16 ulps of float32
    at the logits' scale (bfloat16 keeps 8 significant bits: 2**-8 ~ 0.4 %)."""
    victim, genes, problems = _lenet_inputs()
    logits = {}
    for precision in ("fp32", "bf16"):
        fitness = make_fitness(dataclasses.replace(PROBE_CONFIG, precision=precision), victim.apply_fn,
                               victim.variables)
        logits[precision] = np.asarray(fitness.logits(genes, victim.variables, problems, jnp.ones(2, bool)))
    scale = np.abs(logits["fp32"]).max()
    error = np.abs(logits["bf16"] - logits["fp32"]).max()
    assert 0 < error <= 0.05 * scale, (error, scale)


@pytest.mark.parametrize("precision, operand, attribute", [("fp32", "xf32>", "HIGHEST"),
                                                            ("bf16", "xbf16>", "DEFAULT")])
def test_every_product_of_the_scoring_runs_in_its_arithmetic(precision, operand, attribute):
    """Each convolution and matmul of LeNet's scoring takes and gives `operand` tensors at
    `attribute` precision: in bf16, normalisation keeps the images' dtype
    (deattack.models.common.normalize), or a float32 constant would promote it all back."""
    victim, genes, problems = _lenet_inputs()
    fitness = make_fitness(dataclasses.replace(PROBE_CONFIG, precision=precision), victim.apply_fn,
                           victim.variables)
    text = jax.jit(fitness.logits).lower(genes, victim.variables, problems, jnp.ones(2, bool)).as_text()
    products = re.findall(r"stablehlo\.(?:convolution|dot_general).*", text)
    assert len(products) == 5  # 2 convolutions, 3 dense layers
    for line in products:
        types = re.findall(r"tensor<[^>]*>", line.split(" : ")[-1])
        assert len(types) == 3 and all(t.endswith(operand) for t in types), line
        assert attribute in line, line


def _rounding_victim():
    """Class 1 wins in bfloat16 only: class 0's logit is (200 + 0.25) - 200, 0.25 in
    float32 but 0 in bfloat16 (its spacing at 200 is 1), class 1's is 0.125."""
    def fn(images):
        base = jnp.zeros_like(images[:, 0, 0, 0]) + 200.0
        return jnp.stack([(base + 0.25) - 200.0, jnp.zeros_like(base) + 0.125], axis=-1)

    return Victim.from_fn(fn, name="bf16-rounding")


@pytest.mark.allow_rank_promotion
def test_a_success_claimed_in_bf16_that_float32_rejects_is_unverified():
    victim = _rounding_victim()
    images, labels = np.full((2, 4, 4, 3), 7, np.uint8), np.zeros(2, np.int64)
    fooled = attack(victim, images, labels, dataclasses.replace(PROBE_CONFIG, precision="bf16"))
    assert [r["status"] for r in fooled.records] == ["unverified"] * 2
    assert not any(r["success"] for r in fooled.records)
    assert all(r["adversarial_prediction"] == 0 for r in fooled.records)  # the float32 verdict
    plain = attack(victim, images, labels, dataclasses.replace(PROBE_CONFIG, precision="fp32"))
    assert [r["status"] for r in plain.records] == ["failed"] * 2
