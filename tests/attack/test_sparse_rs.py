"""Sparse-RS (AttackConfig(search="sparse-rs"), deattack.attack.sparse_rs) against the
reference (fra31/sparse-rs, rs_attacks.py, RSAttack norm='L0'): its schedule, one iteration
against a NumPy transcription of the reference's update, exact query counting, the
K-distinct-corner-pixels invariant, the red-dot victim's weak pixel found end to end, and
records independent of the slot layout."""

import dataclasses
import functools
import itertools

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from deattack.attack import AttackConfig, encoding, searches
from deattack.attack import sparse_rs as srs
from deattack.attack.perturb import numpy_apply_pixels

from .red_dot import TARGETS, TRUE_CLASS, WEAK_CLASS, WEAK_X, WEAK_Y, grey_images

# One attack setting for every end-to-end test (each distinct config compiles anew): 1 pixel,
# targeted at 7 (reachable: one location x one of 8 corners, about 8,200 iterations
# expected) and 5 (never: the whole budget is spent), P = 1 as the reference.
CONFIG = AttackConfig(search="sparse-rs", pixels=1, mode="targeted", population_size=1,
                      max_generations=40_000, chunk_generations=500, seed=0)
LAYOUTS = {
    "slots=1": dataclasses.replace(CONFIG, slots=1),
    "slots=3 refill": dataclasses.replace(CONFIG, slots=3, refill=True, chunk_generations=1_700),
    "slots=4 no refill": dataclasses.replace(CONFIG, slots=4, refill=False, chunk_generations=300),
}
FIELDS = ("success", "status", "queries", "generations", "pixels", "best_fitness",
          "adversarial_prediction", "true_label")
SMALL = srs.SparseRSConfig(population_size=1, pixels=5, height=8, width=8, max_generations=20)


@pytest.fixture(scope="module")
def layout_results(red_dot_victim, run_attack):
    images, labels = grey_images(len(TARGETS)), np.full(len(TARGETS), TRUE_CLASS)
    return {name: run_attack(red_dot_victim, config, images, labels, targets=TARGETS)
            for name, config in LAYOUTS.items()}


def _by_problem(records):
    return {(r["image_index"], r["target"]): {f: r[f] for f in FIELDS} for r in records}


# (1) The schedule: (total queries, iteration, divisor of alpha_init), written by hand
# from the reference's p_selection (L0) and its rescaling it' = int(it / total * 10000).
SCHEDULE_TABLE = [
    # total 10000: it' = it.
    (10000, 0, 1), (10000, 1, 2), (10000, 50, 2), (10000, 52, 4), (10000, 200, 4), (10000, 202, 5),
    (10000, 500, 5), (10000, 502, 6), (10000, 1000, 6), (10000, 1002, 8), (10000, 2000, 8),
    (10000, 2002, 10), (10000, 4000, 10), (10000, 4002, 12), (10000, 6000, 12), (10000, 6002, 15),
    (10000, 8000, 15), (10000, 8002, 20), (10000, 9999, 20),
    # total 1000: it' = 10 it (4 -> 40, 6 -> 60, 21 -> 210, 99 -> 990, 101 -> 1010, ...).
    (1000, 4, 2), (1000, 6, 4), (1000, 19, 4), (1000, 21, 5), (1000, 49, 5), (1000, 51, 6),
    (1000, 99, 6), (1000, 101, 8), (1000, 199, 8), (1000, 201, 10), (1000, 399, 10), (1000, 401, 12),
    (1000, 599, 12), (1000, 601, 15), (1000, 799, 15), (1000, 801, 20), (1000, 999, 20),
    # total 16384 (exact in binary): it' = floor(it x 10000 / 16384); 83 -> 50, 84 -> 51,
    # 327 -> 199, 328 -> 200, 329 -> 200, 330 -> 201.
    (16384, 1, 1), (16384, 2, 2), (16384, 83, 2), (16384, 84, 4), (16384, 329, 4), (16384, 330, 5),
    # total 101 (DE's budget at P = 1): it' = int(it / 101 * 10000): 1 -> 99, 2 -> 198, 3 -> 297.
    (101, 1, 4), (101, 2, 4), (101, 3, 5), (101, 5, 5), (101, 6, 6), (101, 81, 20), (101, 100, 20),
    # total 40: 1 -> 250, 2 -> 500, 3 -> 750, 5 -> 1250, 9 -> 2250, 17 -> 4250, 25 -> 6250, 33 -> 8250.
    (40, 1, 5), (40, 2, 5), (40, 3, 6), (40, 5, 8), (40, 9, 10), (40, 17, 12), (40, 25, 15), (40, 33, 20),
]


@pytest.mark.parametrize("total, iteration, divisor", SCHEDULE_TABLE)
def test_schedule_is_the_references(total, iteration, divisor):
    assert srs.alpha(iteration, total, 0.8) == 0.8 / divisor


def test_swap_counts_by_hand():
    # alpha_init 0.5, K = 40: max(int(0.5 / divisor x 40), 1) per stage.
    assert srs.SparseRSConfig(1, 40, 32, 32, 9999, alpha_init=0.5).schedule.sizes == (20, 10, 5, 4, 3, 2, 2, 1, 1, 1)
    assert srs.swap_count(1, 10000, 0.3, 10) == 1  # int(0.15 x 10) = 1
    assert srs.swap_count(0, 10000, 0.3, 10) == 3
    assert srs.swap_count(9000, 10000, 0.3, 10) == 1  # int(0.015 x 10) = 0, at least 1
    # No more pixels swap than stay unperturbed: K = 60 of an 8 x 8 grid leaves 4.
    assert max(srs.SparseRSConfig(1, 60, 8, 8, 100, alpha_init=1.0).schedule.sizes) == 4


@pytest.mark.parametrize("max_generations", [0, 6, 39, 100, 332, 999, 10_000, 123_456])
def test_traced_schedule_equals_the_python_formula(max_generations):
    config = srs.SparseRSConfig(1, 37, 32, 32, max_generations, alpha_init=0.3)
    total = max_generations + 1
    iterations = np.unique(np.concatenate([np.arange(1, min(total, 3000)),
                                           np.linspace(1, total - 1, 3000).astype(int)]))
    iterations = iterations[(iterations >= 1) & (iterations < total)]
    traced = np.asarray(jax.jit(jax.vmap(lambda it: srs.swap_size(config, it)))(jnp.asarray(iterations, jnp.int32)))
    expected = [srs.swap_count(int(it), total, 0.3, 37) for it in iterations]
    np.testing.assert_array_equal(traced, expected)


# (2) One iteration against a NumPy transcription of the reference's update.
def _reference_iteration(clean, order, colours, ind_p, ind_np, new_colours, width):
    """rs_attacks.py, norm='L0', one image: x_new from x_best, and the accepted index swap."""
    k = colours.shape[0]
    b, be = order[:k].copy(), order[k:].copy()
    x_best = clean.copy()
    x_best[b // width, b % width] = colours
    x_new = x_best.copy()
    p_set, np_set = b[ind_p], be[ind_np]
    x_new[p_set // width, p_set % width] = clean[p_set // width, p_set % width]
    x_new[np_set // width, np_set % width] = new_colours
    t, te = b.copy(), be.copy()
    t[ind_p] = be[ind_np]
    te[ind_np] = b[ind_p]
    return x_new, t, te


@pytest.mark.parametrize("seed, size", [(0, 1), (1, 3), (2, 5)])
def test_one_iteration_matches_the_reference(seed, size):
    config, rng = SMALL, np.random.default_rng(seed)
    k, count = config.pixels, config.max_swaps
    order = rng.permutation(config.num_positions).astype(np.int32)
    colours = rng.choice([0.0, 255.0], size=(k, 3)).astype(np.float32)
    clean = rng.integers(1, 255, size=(8, 8, 3)).astype(np.float32)  # never a corner colour
    restored = rng.permutation(k)[:count].astype(np.int32)
    added = rng.permutation(config.num_positions - k)[:count].astype(np.int32)
    corners = rng.random((count, 3)) < 0.5
    choice = srs.Choice(jnp.asarray(restored), jnp.asarray(added), jnp.asarray(corners), jnp.arange(count) < size)
    new_order, new_colours = srs.propose(config, jnp.asarray(order), jnp.asarray(colours), choice)
    candidate = np.asarray(srs.genes(config, new_order, new_colours))

    x_new, t, te = _reference_iteration(clean, order, colours, restored[:size], added[:size],
                                        np.where(corners[:size], 255.0, 0.0), config.width)
    np.testing.assert_array_equal(numpy_apply_pixels(clean, candidate), x_new)
    np.testing.assert_array_equal(np.asarray(new_order), np.concatenate([t, te]))
    np.testing.assert_array_equal(candidate.reshape(k, 5)[:, 2:], np.asarray(new_colours))
    # The genes decode to the candidate's positions exactly (x = column, y = row).
    columns_rows, _ = encoding.decode(jnp.asarray(candidate))
    np.testing.assert_array_equal(np.asarray(columns_rows), np.stack([t % 8, t // 8], axis=1))


@pytest.mark.parametrize("fitness, solved, accepted", [
    (0.4, False, True),  # strictly lower loss
    (0.5, False, False),  # equal: not strictly lower
    (0.9, False, False),
    (0.9, True, True),  # worse, but a success
    (float("nan"), True, False),  # NaN never improves, never solves
])
def test_acceptance_is_strict_improvement_or_success(fitness, solved, accepted):
    config = SMALL
    state = _small_state(config)
    proposal = jnp.roll(state.order, 1, axis=-1)[:, None], state.colours[:, None] * 0
    candidates = jax.vmap(jax.vmap(lambda o, c: srs.genes(config, o, c)))(*proposal)
    new = jax.vmap(srs.accept)(state, candidates, *proposal, jnp.asarray([[fitness]], jnp.float32),
                               jnp.asarray([[solved]]))
    expected_order = proposal[0][:, 0] if accepted else state.order
    np.testing.assert_array_equal(np.asarray(new.order), np.asarray(expected_order))
    np.testing.assert_array_equal(np.asarray(new.best_member),
                                  np.asarray(candidates[:, 0] if accepted else state.best_member))
    assert new.best_fitness[0] == np.float32(fitness if accepted else 0.5)
    assert bool(new.done[0]) == (solved and accepted)


def _small_state(config):
    def constant(candidates, context, active):
        del context, active
        return jnp.full(candidates.shape[:2], 0.5, jnp.float32), jnp.zeros(candidates.shape[:2], bool)

    return srs.init(config, srs.SparseRSParams(), jax.random.split(jax.random.key(3), 1),
                    fitness_fn=constant, context=None)


def test_floyd_sampler_matches_numpy_and_is_uniform():
    picks = np.asarray([4, 2, 6, 1], np.int32)  # step i picks in [0, 7 - 4 + i] of 8
    chosen = np.asarray(srs.sample_distinct(jnp.asarray(picks), jnp.asarray(4), 8))
    reference = []
    for i, pick in enumerate(picks):  # Floyd: take the pick, or j = n - m + i if taken
        reference.append(8 - 4 + i if pick in reference else int(pick))
    np.testing.assert_array_equal(chosen, reference)
    assert list(srs.sample_distinct(jnp.asarray(picks), jnp.asarray(2), 8)[2:]) == [-1, -1]

    config = srs.SparseRSConfig(1, 3, 1, 8, 10)  # 3 slots, 5 free positions, m = 2
    keys = jax.random.split(jax.random.key(0), 20_000)
    choices = jax.jit(jax.vmap(lambda key: srs.choose(config, srs.draw(config, key, 2), 2)))(keys)
    for values, population in ((choices.restored, 3), (choices.added, 5)):
        pairs = np.sort(np.asarray(values)[:, :2], axis=1)
        assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < population
        subsets = list(itertools.combinations(range(population), 2))
        counts = np.asarray([np.sum(np.all(pairs == s, axis=1)) for s in subsets])
        expected = len(pairs) / len(subsets)
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # about 5 sigma


# (3) Exact query counting.
def test_queries_are_exact_and_a_failure_spends_the_budget():
    def never(candidates, context, active):
        del context, active
        return jnp.sum(candidates, axis=-1), jnp.zeros(candidates.shape[:2], bool)

    for population in (1, 3):
        config = dataclasses.replace(SMALL, population_size=population, max_generations=17)
        keys = jax.random.split(jax.random.key(1), 2)
        state = jax.jit(srs.init, static_argnames=("config", "fitness_fn"))(
            config, srs.SparseRSParams(), keys, fitness_fn=never, context=None)
        assert list(state.queries) == [population] * 2
        run = jax.jit(srs.run, static_argnames=("config", "fitness_fn"))
        partial = run(config, srs.SparseRSParams(), state, never, None, 5)
        assert list(partial.queries) == [population * 6] * 2 and list(partial.generation) == [5, 5]
        state = run(config, srs.SparseRSParams(), partial, never, None, 1_000)  # runs out at 17
        assert list(state.queries) == [population * (17 + 1)] * 2 == [config.population_size * 18] * 2
        assert list(state.generation) == [17, 17] and not np.any(srs.active(config, state))
        again = run(config, srs.SparseRSParams(), state, never, None, 3)  # frozen: charged nothing
        jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, again.replace(key=None)),
                     jax.tree.map(np.asarray, state.replace(key=None)))


def test_records_charge_one_query_an_iteration(layout_results):
    for name, results in layout_results.items():
        for record in results.records:
            assert record["queries"] == record["generations"] + 1, name
            if not record["success"]:
                assert record["status"] == "failed" and record["generations"] == CONFIG.max_generations
                assert record["queries"] == CONFIG.max_queries == 40_001
        assert results.summary["queries_this_run"] == sum(r["queries"] for r in results.records), name


# (4) Every candidate has exactly K distinct in-grid pixels with corner colours.
# (K, P) pairs: each compiles anew, so a few, from one pixel to all but one of the 36.
@hypothesis.settings(max_examples=8, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(1, 1), (7, 3), (18, 1), (35, 2)]))
def test_every_candidate_has_k_distinct_corner_pixels(seed, shape):
    pixels, population = shape
    config = srs.SparseRSConfig(population, pixels, 6, 6, max_generations=12, alpha_init=1.0)
    candidates, orders = _trajectory(config, jax.random.split(jax.random.key(seed), 2))
    candidates, orders = np.asarray(candidates), np.asarray(orders)
    assert candidates.shape == (13, 2, population, 5 * pixels)
    pixels_of = candidates.reshape(-1, pixels, 5)
    positions = np.floor(pixels_of[..., 1]) * 6 + np.floor(pixels_of[..., 0])
    assert np.all((pixels_of[..., :2] >= 0) & (pixels_of[..., :2] < 6))
    assert all(len(set(row)) == pixels for row in positions.tolist())
    assert np.all(np.isin(pixels_of[..., 2:], [0.0, 255.0]))
    assert np.all(np.sort(orders, axis=-1) == np.arange(36))  # the state stays a permutation


@jax.jit
def _random_loss(candidates, context, active):
    del context, active  # a loss that accepts about half of the proposals
    loss = jnp.sin(jnp.sum(candidates * jnp.arange(candidates.shape[-1], dtype=jnp.float32)[None, None, :], axis=-1))
    return loss, jnp.zeros(candidates.shape[:2], bool)


@functools.partial(jax.jit, static_argnames=("config",))
def _trajectory(config, keys):
    """Candidates [1 + G, B, P, D] of init and every iteration, and the states' orders."""
    params = srs.SparseRSParams()
    state = srs.init(config, params, keys, fitness_fn=_random_loss, context=None)
    first = srs.candidate_genes(config, *jax.vmap(lambda k: srs.initial_states(config, k))(keys))

    def body(state, _):
        candidates, orders, colours = srs.ask(config, params, state)
        fitness, solved = _random_loss(candidates, None, None)
        return srs.tell(config, params, state, candidates, orders, colours, fitness, solved), (candidates, state.order)

    _, (candidates, orders) = jax.lax.scan(body, state, None, length=config.max_generations)
    return jnp.concatenate([first[None], candidates]), orders


# (5) End to end: the red-dot victim's weak pixel, re-verified.
def test_sparse_rs_finds_the_weak_pixel(layout_results):
    records = layout_results["slots=1"].records
    reachable = [r for r in records if r["target"] == WEAK_CLASS]
    assert len(reachable) == 4
    for record in reachable:
        assert record["success"] and record["status"] == "success"  # re-verified by the runner
        (x, y, r, g, b), = record["pixels"]
        assert (x, y, r, g, b) == (WEAK_X, WEAK_Y, 255, 0, 0)
        assert record["adversarial_prediction"] == WEAK_CLASS
        assert record["generations"] < CONFIG.max_generations
    assert len({r["generations"] for r in reachable}) > 1  # they finish at different times


# (6) Records independent of the slot layout.
def test_layouts_give_identical_records(layout_results):
    reference = _by_problem(layout_results["slots=1"].records)
    assert sorted(reference) == sorted(zip(range(len(TARGETS)), TARGETS.tolist()))
    assert {r["success"] for r in reference.values()} == {True, False}
    for name, results in layout_results.items():
        assert _by_problem(results.records) == reference, name


# The registry entry and its config checks.
@pytest.mark.parametrize("field, value", [
    ("mutation", "best/1"), ("crossover", "bin"), ("adaptation", "jade"), ("differential_weight", 0.7),
    ("crossover_rate", 0.5), ("init", "corners"), ("coordinate_bounds", "clip"), ("colour_bounds", "reflect"),
])
def test_de_settings_with_sparse_rs_are_refused(field, value):
    with pytest.raises(ValueError, match=f"search='sparse-rs' has no {field}"):
        AttackConfig(search="sparse-rs", **{field: value})


def test_bad_sparse_rs_settings_name_the_field():
    with pytest.raises(ValueError, match="neighbour_radius"):
        AttackConfig(search="sparse-rs", neighbour_radius=10.0)
    with pytest.raises(ValueError, match="pixels"):
        AttackConfig(search="sparse-rs", pixels=1024)  # none left to swap in on 32 x 32
    with pytest.raises(ValueError, match="pixels"):
        AttackConfig(search="sparse-rs", pixels=100).search_config((8, 8, 3))
    with pytest.raises(ValueError, match="alpha_init"):
        srs.SparseRSConfig(1, 1, 8, 8, alpha_init=0.0)


def test_registry_entry_budget_and_shape():
    config = dataclasses.replace(CONFIG, mode="untargeted", max_generations=9_999)
    assert config.max_queries == 10_000 and searches.operator_name(dataclasses.asdict(config)) == "sparse-rs"
    static = config.search_config((28, 20, 3))
    assert (static.height, static.width, static.pixels, static.population_size) == (28, 20, 1, 1)
    assert static.alpha_init == 0.3 and CONFIG.search_config().alpha_init == 0.1  # the reference's by mode
    assert "search" in config.search_key()
    de = AttackConfig()
    assert de.search_config((28, 20, 3)) == de.search_config() == de.de_config()  # DE ignores the shape
