"""The benchmark's timed attack compiles nothing (issue 30): its untimed first run is the
identical attack, so every slot-bucket and verification shape is compiled before the
timing starts, and the compile cost is reported on its own."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from deattack.attack import paper_config, slots
from deattack.bench import throughput
from deattack.bench.timing import counting_compilations
from deattack.victims.loading import load_victim
from deattack.victims.victim import _jitted_logits, correctly_classified
from tests.support import requires_cifar10

# 3 images in 2 slots, one generation a chunk: the third problem is refilled when one
# of the first two finishes, and verified alone or with the other. Warmed up on other
# PRNG streams (the old warm-up: image ids + 1e6), this attack compiled 21 programs inside
# its timed run; 2 images in 2 slots never refill, so they would not show it.
CONFIG = paper_config(population_size=50, max_generations=2, slots=2, chunk_generations=1, seed=0)
_JITTED = {"init_slots": slots.init_slots, "run_chunk": slots.run_chunk, "insert_slots": slots.insert_slots,
           "slot_status": slots.slot_status}


def _cache_sizes(victim) -> dict[str, int]:
    """Compiled entries of the attack's jitted functions: a count independent of jax.monitoring."""
    return {name: fn._cache_size() for name, fn in
            {**_JITTED, "predict": _jitted_logits(victim.apply_fn)}.items()}


@pytest.fixture(scope="module")
def lenet_problems(cifar_test):
    victim = load_victim("lenet")
    images, labels = cifar_test
    pool = np.arange(60)
    chosen = pool[correctly_classified(victim, images[pool], labels[pool])][:3]
    return victim, np.asarray(images[chosen], np.float32), labels[chosen], chosen


@requires_cifar10
def test_the_timed_attack_compiles_nothing_and_reports_the_compilation(lenet_problems, monkeypatch):
    victim, images, labels, chosen = lenet_problems
    calls = []

    def attack(*args, **kwargs):
        before = _cache_sizes(victim)
        with counting_compilations() as compiled:
            results = real_attack(*args, **kwargs)
        calls.append((compiled.count, {k: v - before[k] for k, v in _cache_sizes(victim).items()}))
        return results

    real_attack = throughput.attack
    monkeypatch.setattr(throughput, "attack", attack)
    report = throughput.attack_vs_forward(victim, images, labels, chosen, CONFIG, [50], forward_seconds=0.05)
    assert len(calls) == 2  # the untimed first run, then the timed one
    (first_count, _), (timed_count, timed_growth) = calls
    assert first_count > 0
    assert timed_count == 0 and not any(timed_growth.values()), calls
    assert report["attack_programs_compiled_timed"] == 0
    assert report["attack_programs_compiled"] == first_count
    assert report["attack_first_run_s"] >= report["attack_compile_s"] >= 0
    assert report["attack_xla_compile_s"] > 0


def test_counting_compilations_counts_a_cache_miss_only():
    square = jax.jit(lambda x: x * x)
    three, four = np.ones(3, np.float32), np.ones(4, np.float32)  # NumPy: making them compiles nothing
    with counting_compilations() as first:
        square(three)
    with counting_compilations() as again:
        square(three)
    with counting_compilations() as other_shape:
        square(four)
    assert (first.count, again.count, other_shape.count) == (1, 0, 1)
