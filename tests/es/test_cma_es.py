"""CMA-ES (deattack.es.cma_es): one generation against a NumPy transcription of Hansen's
tutorial, convergence in a box, NaN handling, exact queries, batch invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.es import cma_es

D = 4
LAMBDA = 10
# One config for the engine tests (each distinct config or batch size compiles anew).
CONFIG = cma_es.CMAESConfig(population_size=LAMBDA, num_dims=D, bounds="clip", max_generations=300)
run = jax.jit(cma_es.run, static_argnames=("config", "fitness_fn"))
init = jax.jit(cma_es.init, static_argnames=("config", "fitness_fn"))
update = jax.jit(cma_es.update_distribution, static_argnames=("constants",))


# --- one generation against the tutorial's formulas ---------------------------------------


def reference_generation(mean, sigma, covariance, path_sigma, path_c, samples, fitness, g):
    """One (mu/mu_w, lambda)-CMA-ES update in float64, from Hansen's tutorial (Table 1 defaults
    with positive weights; the selection, recombination, step-size and covariance equations
    of its Section 4 / Appendix A). Returns (mean, sigma, C, p_sigma, p_c) and the constants."""
    lam, n = samples.shape
    mu = lam // 2
    w = np.array([np.log((lam + 1) / 2) - np.log(i) for i in range(1, mu + 1)])
    w = w / np.sum(w)
    mu_eff = np.sum(w)**2 / np.sum(w**2)
    c_sigma = (mu_eff + 2) / (n + mu_eff + 5)
    d_sigma = 1 + 2 * max(0.0, np.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
    c_1 = 2 / ((n + 1.3)**2 + mu_eff)
    c_mu = min(1 - c_1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2)**2 + 2 * mu_eff / 2))
    chi_n = np.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))

    ranked = [samples[k] for k in np.argsort(fitness, kind="stable")]
    y = [(ranked[i] - mean) / sigma for i in range(mu)]
    y_w = sum(w[i] * y[i] for i in range(mu))
    new_mean = mean + 1.0 * sigma * y_w  # c_m = 1
    values, vectors = np.linalg.eigh(covariance)
    inverse_root = vectors @ np.diag(values**-0.5) @ vectors.T
    new_path_sigma = (1 - c_sigma) * path_sigma + np.sqrt(c_sigma * (2 - c_sigma) * mu_eff) * inverse_root @ y_w
    norm = np.linalg.norm(new_path_sigma)
    h_sigma = 1.0 if norm / np.sqrt(1 - (1 - c_sigma)**(2 * (g + 1))) < (1.4 + 2 / (n + 1)) * chi_n else 0.0
    new_path_c = (1 - c_c) * path_c + h_sigma * np.sqrt(c_c * (2 - c_c) * mu_eff) * y_w
    delta = (1 - h_sigma) * c_c * (2 - c_c)
    rank_mu = sum(w[i] * np.outer(y[i], y[i]) for i in range(mu))
    new_covariance = ((1 + c_1 * delta - c_1 - c_mu * np.sum(w)) * covariance
                      + c_1 * np.outer(new_path_c, new_path_c) + c_mu * rank_mu)
    new_sigma = sigma * np.exp(c_sigma / d_sigma * (norm / chi_n - 1))
    constants = dict(mu=mu, weights=w, mu_eff=mu_eff, c_sigma=c_sigma, d_sigma=d_sigma, c_c=c_c, c_1=c_1,
                     c_mu=c_mu, chi_n=chi_n)
    return (new_mean, new_sigma, new_covariance, new_path_sigma, new_path_c, h_sigma), constants


def _fixed_generation(seed, lam, n, path_scale):
    """A non-trivial distribution (off-centre mean, correlated C, non-zero paths) and
    fixed samples from it with fixed fitness values."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    covariance = a @ a.T / n + 0.5 * np.eye(n)
    mean, sigma = rng.uniform(0.2, 0.8, n), 0.17
    values, vectors = np.linalg.eigh(covariance)
    samples = mean + sigma * rng.normal(size=(lam, n)) @ np.diag(np.sqrt(values)) @ vectors.T
    fitness = rng.permutation(lam).astype(np.float64) + rng.uniform(0, 0.5, lam)
    path_sigma, path_c = path_scale * rng.normal(size=n), 0.3 * rng.normal(size=n)
    return mean, sigma, covariance, path_sigma, path_c, samples, fitness


@pytest.mark.parametrize("lam, n, g, path_scale, h_sigma", [
    (10, 4, 0, 0.1, 1.0),    # first update, short path: h_sigma = 1
    (10, 4, 7, 5.0, 0.0),    # long p_sigma: h_sigma = 0 stalls p_c and compensates C
    (13, 5, 3, 0.5, 1.0),    # odd lambda (mu = 6)
    (400, 5, 20, 0.5, 1.0),  # the attack's lambda at 1 pixel: c_mu ~ 1
])
def test_one_generation_matches_the_tutorial(lam, n, g, path_scale, h_sigma):
    mean, sigma, covariance, path_sigma, path_c, samples, fitness = _fixed_generation(lam + n + g, lam, n, path_scale)
    expected, constants = reference_generation(mean, sigma, covariance, path_sigma, path_c, samples, fitness, g)
    assert expected[-1] == h_sigma  # the case is the one its name says

    got_constants = cma_es.strategy_constants(lam, n)
    assert got_constants.parents == constants["mu"]
    np.testing.assert_allclose(got_constants.weights, constants["weights"], rtol=1e-12)
    for name in ("mu_eff", "c_sigma", "d_sigma", "c_c", "c_1", "c_mu", "chi_n"):
        assert getattr(got_constants, name) == pytest.approx(constants[name], rel=1e-12), name

    values, vectors = np.linalg.eigh(covariance)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    distribution = cma_es.Distribution(
        mean=f32(mean), step_size=f32(sigma), covariance=f32(covariance), eigenvectors=f32(vectors),
        scales=f32(np.sqrt(values)), path_sigma=f32(path_sigma), path_c=f32(path_c))
    new = update(got_constants, distribution, f32(samples), f32(fitness), jnp.asarray(g, jnp.int32))
    new_mean, new_sigma, new_covariance, new_path_sigma, new_path_c, _ = expected
    tolerance = dict(rtol=2e-4, atol=2e-6)
    np.testing.assert_allclose(new.mean, new_mean, **tolerance)
    np.testing.assert_allclose(new.step_size, new_sigma, **tolerance)
    np.testing.assert_allclose(new.path_sigma, new_path_sigma, **tolerance)
    np.testing.assert_allclose(new.path_c, new_path_c, **tolerance)
    np.testing.assert_allclose(new.covariance, new_covariance, **tolerance)
    # The new mean is the weighted recombination of the mu best samples (c_m = 1).
    best = samples[np.argsort(fitness)[: lam // 2]]
    np.testing.assert_allclose(new.mean, constants["weights"] @ best, **tolerance)
    # The refreshed eigendecomposition is C's: C = B diag(scales^2) B^T.
    rebuilt = np.asarray(new.eigenvectors) @ np.diag(np.asarray(new.scales, np.float64)**2) @ np.asarray(
        new.eigenvectors).T
    np.testing.assert_allclose(rebuilt, new_covariance, rtol=1e-3, atol=1e-5)


def test_rank_ties_go_to_the_lower_index():
    _, sigma, covariance, path_sigma, path_c, samples, _ = _fixed_generation(0, 10, 4, 0.1)
    fitness = np.zeros(10)  # all tied: the first mu samples are selected
    mean = np.full(4, 0.5)
    expected, constants = reference_generation(mean, sigma, covariance, path_sigma, path_c, samples, fitness, 0)
    values, vectors = np.linalg.eigh(covariance)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    distribution = cma_es.Distribution(f32(mean), f32(sigma), f32(covariance), f32(vectors), f32(np.sqrt(values)),
                                       f32(path_sigma), f32(path_c))
    new = update(cma_es.strategy_constants(10, 4), distribution, f32(samples), f32(fitness), jnp.asarray(0))
    np.testing.assert_allclose(new.mean, constants["weights"] @ samples[:5], rtol=2e-4, atol=2e-6)


# --- the engine on benchmark problems -------------------------------------------------------

SPHERE, ELLIPSOID = 0, 1
LOWER, UPPER = -1.0, 2.0


def benchmark_fitness(candidates, context, active):
    """Sphere or ellipsoid (condition 1e4) around context["optimum"] [B, D]; solved below
    context["tolerance"] [B]. NaN (claiming "solved") where context["nan_below"] > x_0."""
    del active
    offset = candidates - context["optimum"][:, None, :]
    scales = jnp.asarray(10.0 ** (4.0 * np.arange(D) / (D - 1)), jnp.float32)
    sphere = jnp.sum(offset**2, axis=-1)
    ellipsoid = jnp.sum(scales[None, None, :] * offset**2, axis=-1)
    fitness = jnp.where(context["function"][:, None] == SPHERE, sphere, ellipsoid)
    nan = candidates[..., 0] < context["nan_below"][:, None]
    fitness = jnp.where(nan, jnp.nan, fitness)
    return fitness, (fitness < context["tolerance"][:, None]) | nan


def _problems(rows, seed=0):
    """rows: (function, optimum [D] or scalar, tolerance, nan_below) per problem."""
    count = len(rows)
    context = {
        "function": jnp.asarray([r[0] for r in rows], jnp.int32),
        "optimum": jnp.asarray(np.stack([np.broadcast_to(np.asarray(r[1], np.float32), (D,)) for r in rows])),
        "tolerance": jnp.asarray([r[2] for r in rows], jnp.float32),
        "nan_below": jnp.asarray([r[3] for r in rows], jnp.float32),
    }
    keys = jax.random.split(jax.random.key(seed), count)
    lower, upper = jnp.full((count, D), LOWER), jnp.full((count, D), UPPER)
    state = init(CONFIG, cma_es.CMAESParams(), keys, lower, upper, fitness_fn=benchmark_fitness, context=context)
    return state, context


NO_NAN = -np.inf
OFF_CENTRE = np.asarray([0.3, -0.4, 1.2, 0.9], np.float32)
# The box's corner nearest (3, 3, 3, 3) is (2, 2, 2, 2), at sphere distance 4 exactly.
BENCHMARK = [
    (SPHERE, OFF_CENTRE, 1e-8, NO_NAN),
    (SPHERE, -0.7, 1e-8, NO_NAN),
    (ELLIPSOID, OFF_CENTRE, 1e-8, NO_NAN),
    (ELLIPSOID, 0.1, 1e-8, NO_NAN),
    (SPHERE, 3.0, 4.0 + 1e-6, NO_NAN),   # optimum outside the box: found on its corner
    (SPHERE, 0.0, -1.0, NO_NAN),          # never solved: runs the whole budget
    (SPHERE, 1.0, 1e-6, 0.5),             # NaN left of x_0 = 0.5, every NaN "solves"
    (SPHERE, 0.0, 1e-6, 10.0),            # all NaN
]


@pytest.fixture(scope="module")
def benchmark_run():
    """(initial state, context, final state) of the BENCHMARK problems, run to the end."""
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        start, context = _problems(BENCHMARK)
        return start, context, run(CONFIG, cma_es.CMAESParams(), start, benchmark_fitness, context)


def test_converges_on_sphere_and_ellipsoid_in_a_box(benchmark_run):
    _, _, state = benchmark_run
    best, done = np.asarray(state.best_fitness), np.asarray(state.done)
    assert done[:5].all() and (best[:4] < 1e-8).all()
    # The ellipsoid needs C to learn its axes, but far fewer than the 300 generations.
    assert (np.asarray(state.generation)[:5] < 200).all()
    np.testing.assert_array_equal(state.best_member[4], np.full(D, UPPER, np.float32))
    members = np.asarray(state.best_member)
    assert ((members >= LOWER) & (members <= UPPER)).all()
    # The mean learns from repaired samples, so it stays in the (normalised) box.
    mean = np.asarray(state.distribution.mean)
    assert ((mean >= 0) & (mean <= 1)).all()


def test_nan_ranks_last_and_never_solves(benchmark_run):
    _, context, state = benchmark_run
    # Half the box is NaN that claims to solve: the problem still needs x = 1 to 1e-6.
    assert bool(state.done[6]) and state.best_fitness[6] < 1e-6
    assert state.best_member[6, 0] >= 0.5
    # All NaN: never done, best stays +inf, the whole budget is spent.
    assert not state.done[7] and state.best_fitness[7] == np.inf
    assert int(state.generation[7]) == CONFIG.max_generations
    assert np.isfinite(np.asarray(state.distribution.covariance[7])).all()


def test_queries_are_lambda_per_generation_plus_init(benchmark_run):
    start, context, state = benchmark_run
    np.testing.assert_array_equal(start.queries, np.full(len(BENCHMARK), LAMBDA))
    np.testing.assert_array_equal(start.generation, np.zeros(len(BENCHMARK)))
    np.testing.assert_array_equal(state.queries, LAMBDA * (np.asarray(state.generation) + 1))
    done, generation = np.asarray(state.done), np.asarray(state.generation)
    assert (generation[~done] == CONFIG.max_generations).all() and (generation[done] < CONFIG.max_generations).all()
    assert not cma_es.active(CONFIG, state).any()
    # Done and exhausted problems are frozen: running again changes nothing.
    _assert_states_equal(run(CONFIG, cma_es.CMAESParams(), state, benchmark_fitness, context), state)


def test_first_generation_is_drawn_around_the_box_centre_with_sigma0_of_its_width(benchmark_run):
    start, _, _ = benchmark_run
    b, optimum, width = 1, -0.7, UPPER - LOWER  # a sphere problem without NaN
    # The documented stream: the initial generation draws z ~ N(0, I) from fold_in(key, tag);
    # with C0 = I the samples are m0 + sigma0 z = 0.5 + 0.3 z in the normalised box, clipped.
    sample_key = jax.random.split(jax.random.fold_in(start.key[b], 2**31 - 1))[0]
    samples = np.clip(0.5 + 0.3 * np.asarray(jax.random.normal(sample_key, (LAMBDA, D)), np.float64), 0, 1)
    candidates = LOWER + width * samples
    fitness = np.sum((candidates - optimum)**2, axis=-1)
    np.testing.assert_allclose(start.best_member[b], candidates[np.argmin(fitness)], rtol=1e-5)
    constants = cma_es.strategy_constants(LAMBDA, D)
    ranked = samples[np.argsort(fitness, kind="stable")[: constants.parents]]
    np.testing.assert_allclose(start.distribution.mean[b], np.asarray(constants.weights) @ ranked,
                               rtol=1e-4, atol=1e-5)


def test_candidates_are_the_repaired_samples_in_the_box():
    config = cma_es.CMAESConfig(population_size=64, num_dims=3, bounds=("reflect", "clip", "reinit"))
    lower, upper = jnp.asarray([[0.0, -1.0, 5.0]] * 2), jnp.asarray([[32.0, 1.0, 6.0]] * 2)
    # sigma0 = 1.5 box widths around the centre: most samples need repair.
    distribution = jax.vmap(lambda m: cma_es.initial_distribution(3, m, jnp.asarray(1.5)))(jnp.full((2, 3), 0.5))
    state = cma_es.CMAESState(
        distribution=distribution, best_member=lower, best_fitness=jnp.full((2,), jnp.inf),
        generation=jnp.zeros((2,), jnp.int32), done=jnp.zeros((2,), bool), queries=jnp.zeros((2,), jnp.int32),
        key=jax.random.split(jax.random.key(3), 2), lower=lower, upper=upper)
    candidates, samples = jax.jit(cma_es.ask, static_argnames="config")(config, cma_es.CMAESParams(), state)
    candidates, samples = np.asarray(candidates), np.asarray(samples)
    low, high = np.asarray(lower)[:, None], np.asarray(upper)[:, None]
    assert ((candidates >= low) & (candidates <= high)).all()
    assert ((samples >= 0) & (samples <= 1)).all()
    np.testing.assert_allclose(candidates, low + samples * (high - low), rtol=1e-6, atol=1e-5)
    # clip puts every overshoot on a bound; reflect mirrors it inside (clipping only what
    # overshoots by more than a width); reinit redraws it inside.
    on_bound = (samples == 0) | (samples == 1)
    assert on_bound[..., 1].mean() > 0.3
    assert on_bound[..., 0].mean() < on_bound[..., 1].mean() and on_bound[..., 2].mean() < 0.05


@pytest.mark.parametrize("size", [1, 2, 5, 25])
def test_jacobi_eigh_matches_numpy(size):
    rng = np.random.default_rng(size)
    rotation, _ = np.linalg.qr(rng.normal(size=(size, size)))
    eigenvalues = np.geomspace(1e-3, 1.0, size)
    matrix = (rotation * eigenvalues) @ rotation.T
    values, vectors = jax.jit(cma_es.symmetric_eigh)(jnp.asarray(matrix, jnp.float32))
    values, vectors = np.asarray(values, np.float64), np.asarray(vectors, np.float64)
    np.testing.assert_allclose(np.sort(values), eigenvalues, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(size), atol=1e-5)
    np.testing.assert_allclose((vectors * values) @ vectors.T, matrix, atol=1e-5)


# --- invariance and determinism ---------------------------------------------------------------


def _assert_states_equal(a, b):
    a = jax.tree.map(np.asarray, a.replace(key=None))
    b = jax.tree.map(np.asarray, b.replace(key=None))
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_problems_ignore_batch_composition(benchmark_run):
    start, context, _ = benchmark_run
    params = cma_es.CMAESParams()
    together = run(CONFIG, params, start, benchmark_fitness, context, 30)
    take = lambda tree, rows: jax.tree.map(lambda leaf: leaf[rows], tree)  # noqa: E731
    for b in (2, 6):  # alone (an ellipsoid; a NaN problem)
        alone = run(CONFIG, params, take(start, slice(b, b + 1)), benchmark_fitness, take(context, slice(b, b + 1)), 30)
        _assert_states_equal(take(together, slice(b, b + 1)), alone)
    order = np.random.default_rng(0).permutation(len(BENCHMARK))  # other slots, other neighbours
    shuffled = run(CONFIG, params, take(start, order), benchmark_fitness, take(context, order), 30)
    _assert_states_equal(take(together, order), shuffled)


def test_chunks_equal_one_run(benchmark_run):
    start, context, _ = benchmark_run
    params = cma_es.CMAESParams()
    once = run(CONFIG, params, start, benchmark_fitness, context, 12)
    chunked = run(CONFIG, params, run(CONFIG, params, start, benchmark_fitness, context, 5),
                  benchmark_fitness, context, 7)
    _assert_states_equal(once, chunked)
    assert (np.asarray(once.generation)[np.asarray(cma_es.active(CONFIG, once))] == 12).all()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(population_size=1, num_dims=3), "population_size"),
    (dict(population_size=8, num_dims=0), "num_dims"),
    (dict(population_size=8, num_dims=2, bounds="wrap"), "bounds"),
    (dict(population_size=8, num_dims=2, bounds=("clip",)), "bounds"),
    (dict(population_size=8, num_dims=2, max_generations=-1), "max_generations"),
])
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cma_es.CMAESConfig(**kwargs)


@pytest.mark.parametrize("value", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_initial_step_size(value):
    with pytest.raises(ValueError, match="initial_step_size"):
        cma_es.CMAESParams(initial_step_size=value).validate()
