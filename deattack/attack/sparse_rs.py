"""Sparse-RS for L0: random search over sets of K perturbed pixels, batched over B problems.

Croce, Andriushchenko, Singh, Flammarion & Hein, "Sparse-RS: a versatile framework for
query-efficient sparse black-box adversarial attacks" (AAAI 2022); the reference is
fra31/sparse-rs, rs_attacks.py, RSAttack with norm='L0'. Per problem:

  - State: K distinct perturbed positions of the H x W grid with a colour each, and the
    complement, the unperturbed positions. Init: K distinct random positions, each
    channel of each independently 0 or 255 (a corner of the colour cube).
  - Iteration it = 1, 2, ...: m = max(int(alpha(it) K), 1) of the perturbed positions
    (uniformly, without replacement) go back to their clean colour and m unperturbed ones
    (likewise) get fresh corner colours: again exactly K perturbed pixels. The candidate
    replaces the current one if its loss is strictly lower or it succeeds; a success stops.
  - alpha(it) is alpha_init divided by 1, 2, 4, 5, 6, 8, 10, 12, 15, 20 as the rescaled
    iteration int(it / n_queries x 10000) passes 0, 50, 200, 500, 1000, 2000, 4000,
    6000, 8000 (`alpha`). alpha_init: 0.3 untargeted, 0.1 targeted, the settings of the
    reference's README commands (eval.py's default is 0.3; RSAttack's 0.8 is not what its
    L0 runs use).

The loss is the attack's fitness (deattack.attack.criteria, lower is better). Acceptance
reads only the order of losses, so untargeted fitness="margin" (logit_true - max other
logit) is the reference's default loss='margin' exactly, and untargeted "probability"
(p_true) orders like its loss='ce' (log p_true). Targeted, the reference always uses
cross-entropy -log p_target; fitness="probability" (1 - p_target) orders the same except
where float32 rounds 1 - p_target to 1 (p_target below about 6e-8), where the reference
would still see progress; "margin" is the Carlini-Wagner margin, another loss.

Departures from the reference, and why:
  - Every problem has its own PRNG stream: iteration it of a problem draws from
    fold_in(its key, it - 1) (its generation), the initial state from fold_in(key,
    _INIT_TAG). The reference draws one index choice (torch.randperm) for the whole
    batch; here a problem's run does not depend on its batch, slot or refill time.
  - A problem spends at most its budget exactly: 1 query at init plus 1 an iteration,
    n_queries = max_generations + 1 (the reference's n_queries, which also rescales the
    schedule).
  - population_size P: P independent proposals from the same current state each
    iteration (and P random initial states), the best of them (a success first, else
    the lowest loss, ties to the lowest index) accepted by the same rule; an iteration
    costs P queries. P = 1 is the reference; P > 1 buys larger forward batches (on CPU
    the attack's microbatch divides P, deattack.attack.fitness) at the cost of
    iterations. The schedule runs over iterations either way.
  - The m slots and m positions are a uniform random subset each, drawn by Floyd's
    algorithm (`sample_distinct`: m draws), not by a permutation of all of them (the
    reference's torch.randperm): the same distribution, far cheaper in the traced loop.
  - m is capped at H W - K, the unperturbed positions there are (the reference needs
    m <= H W - K to run at all); K < H W.
  - Success is the attack's criterion (top-1 class, and the confidence threshold if
    set), as for every search, where the reference tests margin < -1e-6.

An iteration is one query at P = 1, so AttackConfig.chunk_generations (iterations a
jitted call) should be about 100, not DE's 10: on a victim whose forward costs nothing the
host's reads between chunks then stop mattering (measured on 2 CPU cores, red-dot victim, 8
slots: 98k queries/s at 10, 172k at 100, 139k at 1,000, where finished slots wait longer for
a refill); on LeNet the forward dominates and 10 to 500 measure alike (about 10k/s).

The state's best_member holds genes (x + 0.5, y + 0.5, r, g, b) per pixel, so the
attack's decoding (floor, round) gives exactly the positions and colours searched, and
the slot runner, query accounting and re-verification treat it as any other search.
The interface is the one of deattack.de.engine and deattack.es.cma_es (init, ask, tell,
step, run, active) with the same fitness function (candidates [B, P, D], context,
active [B]) -> (fitness [B, P], solved [B, P]).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from deattack.attack.encoding import GENES_PER_PIXEL
from deattack.de.engine import FitnessFn, run_while_active
from deattack.de.selection import best_index, sanitize

Array = jax.Array

# fold_in tag of the initial state; iteration it draws from tag it - 1 (the generation),
# and int32 generation counts never reach this one.
_INIT_TAG = 2**31 - 1
CHANNELS = GENES_PER_PIXEL - 2  # r, g, b
TOP_COLOUR = 255.0  # a colour cube's corner has every channel at 0 or here
# The reference's L0 schedule: alpha = alpha_init / _DIVISORS[s] for the rescaled
# iteration in (_RESCALED_BOUNDS[s - 1], _RESCALED_BOUNDS[s]]; s = 0 (rescaled <= 0)
# keeps alpha_init.
RESCALED_ITERATIONS = 10000
_RESCALED_BOUNDS = (0, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_DIVISORS = (1, 2, 4, 5, 6, 8, 10, 12, 15, 20)
ALPHA_INIT = {"untargeted": 0.3, "targeted": 0.1}


def rescaled_iteration(iteration: int, total: int) -> int:
    """The reference's int(it / n_queries * 10000), in float64 as there."""
    return int(iteration / total * RESCALED_ITERATIONS)


def alpha(iteration: int, total: int, alpha_init: float) -> float:
    """The fraction of the K pixels swapped at `iteration` (1 .. total - 1) of a run of
    `total` queries: the reference's p_selection for L0 with its rescaling."""
    rescaled = rescaled_iteration(iteration, total)
    stage = sum(rescaled > bound for bound in _RESCALED_BOUNDS)
    return alpha_init / _DIVISORS[stage]


def swap_count(iteration: int, total: int, alpha_init: float, pixels: int) -> int:
    """m = max(int(alpha K), 1), the reference's eps_it."""
    return max(int(alpha(iteration, total, alpha_init) * pixels), 1)


def _first_iteration_above(bound: int, total: int) -> int:
    """The least iteration whose rescaled iteration exceeds `bound` (it is monotone in the
    iteration, float rounding included): the exact answer's neighbourhood, walked."""
    iteration = -(-(bound + 1) * total // RESCALED_ITERATIONS)
    while iteration > 0 and rescaled_iteration(iteration - 1, total) > bound:
        iteration -= 1
    while rescaled_iteration(iteration, total) <= bound:
        iteration += 1
    return iteration


class Schedule(NamedTuple):
    """The schedule as static integers, so the traced loop computes m exactly as the
    reference's float64 Python does: stage s covers iterations in
    [starts[s - 1], starts[s]), and swaps sizes[s] pixels."""

    starts: tuple[int, ...]  # 9 first iterations, non-decreasing
    sizes: tuple[int, ...]  # 10 swap counts, each in [1, min(K, H W - K)]


@dataclasses.dataclass(frozen=True)
class SparseRSConfig:
    """What fixes shapes and code paths; hashable, a static argument of `jax.jit`.

    Attributes:
      population_size: P, proposals an iteration (1 = the reference).
      pixels: K, perturbed pixels, 1 <= K < H W.
      height, width: H, W, the image grid (positions are row * W + column).
      max_generations: iterations after the initial state: the reference's
        n_queries = max_generations + 1 at P = 1.
      alpha_init: the schedule's initial fraction, (0, 1] (ALPHA_INIT has the
        reference's by mode).
    """

    population_size: int
    pixels: int
    height: int
    width: int
    max_generations: int = 100
    alpha_init: float = ALPHA_INIT["untargeted"]

    def __post_init__(self):
        if self.population_size < 1:
            raise ValueError(f"population_size must be >= 1 for sparse-rs, got {self.population_size}")
        if not 1 <= self.pixels < self.height * self.width:
            raise ValueError(f"pixels={self.pixels}: sparse-rs needs 1 <= pixels < H x W = "
                             f"{self.height * self.width} (some pixel must stay unperturbed to swap in)")
        if self.max_generations < 0:
            raise ValueError(f"max_generations must be >= 0, got {self.max_generations}")
        if not 0.0 < self.alpha_init <= 1.0:  # NaN fails too
            raise ValueError(f"alpha_init={self.alpha_init} must be in (0, 1]")

    @property
    def num_positions(self) -> int:
        return self.height * self.width

    @property
    def num_dims(self) -> int:
        return GENES_PER_PIXEL * self.pixels

    @property
    def max_swaps(self) -> int:
        """No more pixels can swap than either set holds."""
        return min(self.pixels, self.num_positions - self.pixels)

    @property
    def schedule(self) -> Schedule:
        total = self.max_generations + 1
        starts = tuple(min(_first_iteration_above(bound, total), 2**31 - 1) for bound in _RESCALED_BOUNDS)
        sizes = tuple(min(max(int(self.alpha_init / divisor * self.pixels), 1), self.max_swaps)
                      for divisor in _DIVISORS)
        return Schedule(starts, sizes)


@struct.dataclass
class SparseRSParams:
    """No traced tunables: alpha_init fixes the static integer schedule (SparseRSConfig)."""

    def validate(self) -> SparseRSParams:
        return self


@struct.dataclass
class SparseRSState:
    """State of B problems; every leaf has leading axis B (the DE state's conventions).

    Attributes:
      order: [B, N] int32, N = H W, a permutation of the flat positions row * W + column:
        the first K are the current perturbed pixels, the rest the unperturbed ones.
      colours: [B, K, 3] float32, 0 or 255 per channel: the colours of order[:, :K].
      best_member: [B, D] float32, the current pixels as genes (x + 0.5, y + 0.5, r, g, b):
        the solving candidate once the problem is done.
      best_fitness: [B] float32, its loss (+inf while no candidate had a finite one).
      generation: [B] int32, iterations run after the initial state.
      done: [B] bool, a candidate solved the problem; its state is frozen.
      queries: [B] int32, evaluations charged: P at init, P an iteration.
      key: [B] typed PRNG keys; iteration it draws from fold_in(key, it - 1).
    """

    order: Array
    colours: Array
    best_member: Array
    best_fitness: Array
    generation: Array
    done: Array
    queries: Array
    key: Array


class Draws(NamedTuple):
    """The random numbers of one proposal (unbatched), for a swap of m pixels.

    Attributes:
      restore: [max_swaps] int32, entry i uniform in [0, K - m + i]: Floyd's draws of the
        perturbed slots to restore (`sample_distinct`).
      add: [max_swaps] int32, entry i uniform in [0, N - K - m + i]: Floyd's draws of the
        unperturbed positions to add.
      corners: [max_swaps, 3] bool, channel at 255 (True) or 0 of the i-th added pixel.
      Entries i >= m are unused.
    """

    restore: Array
    add: Array
    corners: Array


class Choice(NamedTuple):
    """What one proposal changes (unbatched): the reference's ind_p, ind_np and colours.

    Attributes:
      restored: [max_swaps] int32, distinct slots of order[:K] returned to clean.
      added: [max_swaps] int32, distinct indices into the unperturbed part order[K:]; the
        i-th takes the slot restored[i].
      corners: [max_swaps, 3] bool, the i-th added pixel's corner colour.
      taken: [max_swaps] bool, the first m entries: the ones that swap.
    """

    restored: Array
    added: Array
    corners: Array
    taken: Array


def corner_colours(corners: Array) -> Array:
    return jnp.where(corners, TOP_COLOUR, 0.0).astype(jnp.float32)


def genes(config: SparseRSConfig, order: Array, colours: Array) -> Array:
    """[5K] float32 genes of one problem's perturbed pixels: centred coordinates, so the
    attack's floor decoding returns them exactly."""
    positions = order[: config.pixels]
    columns = (positions % config.width).astype(jnp.float32) + 0.5
    rows = (positions // config.width).astype(jnp.float32) + 0.5
    return jnp.concatenate([columns[:, None], rows[:, None], colours], axis=1).reshape(-1)


def draw(config: SparseRSConfig, key: Array, size: Array) -> Draws:
    """One proposal's random numbers from its own key, for a swap of `size` pixels."""
    restore_key, add_key, corner_key = jax.random.split(key, 3)
    count = config.max_swaps
    steps = jnp.arange(count, dtype=jnp.int32)

    def floyd_draws(draw_key, population):  # entry i uniform in [0, population - size + i]
        return jax.random.randint(draw_key, (count,), 0, jnp.maximum(population - size + steps + 1, 1))

    return Draws(restore=floyd_draws(restore_key, config.pixels),
                 add=floyd_draws(add_key, config.num_positions - config.pixels),
                 corners=jax.random.bernoulli(corner_key, 0.5, (count, CHANNELS)))


def sample_distinct(picks: Array, size: Array, population: int) -> Array:
    """`size` distinct indices of [0, population), a uniformly random subset: Floyd's
    algorithm (Bentley & Floyd, "Programming pearls: a sample of brilliance", CACM 1987).

    Step i (j = population - size + i) takes picks[i], uniform in [0, j], unless already
    taken, then j. It costs `size` draws, not the permutation of all candidates (the
    reference's torch.randperm; on CPU a sort or top_k of ~1,000 entries costs more than a
    LeNet forward pass). picks: [M] int32; entries >= size come out as -1.
    """
    count = picks.shape[0]

    def step(i, chosen):
        last = population - size + i
        value = jnp.where(jnp.any(chosen == picks[i]), last, picks[i])
        return chosen.at[i].set(jnp.where(i < size, value, -1))

    return jax.lax.fori_loop(0, count, step, jnp.full((count,), -1, jnp.int32))


def choose(config: SparseRSConfig, draws: Draws, size: Array) -> Choice:
    """The swap the draws make: `size` slots to restore, as many positions to add."""
    restored = sample_distinct(draws.restore, size, config.pixels)
    added = sample_distinct(draws.add, size, config.num_positions - config.pixels)
    return Choice(restored, added, draws.corners, jnp.arange(config.max_swaps) < size)


def propose(config: SparseRSConfig, order: Array, colours: Array, choice: Choice) -> tuple[Array, Array]:
    """One candidate of one problem: the chosen perturbed pixels swapped for unperturbed ones.

    Args:
      order: [N] int32, the current permutation; colours: [K, 3] its pixels' colours.
      choice: what changes.

    Returns:
      The candidate's (order [N], colours [K, 3]): slot restored[i] of order[:K] and row
      K + added[i] exchanged for every taken i (the reference's index swap), the added
      pixels with their corner colours. A restored pixel needs nothing written: the
      candidate's image is the clean one with its K pixels set.
    """
    k, outside = config.pixels, config.num_positions  # an index out of range: dropped
    slots = jnp.where(choice.taken, choice.restored, outside)
    rows = jnp.where(choice.taken, choice.added + k, outside)
    incoming = order[jnp.where(choice.taken, choice.added + k, k)]
    outgoing = order[jnp.where(choice.taken, choice.restored, 0)]
    new_order = order.at[slots].set(incoming, mode="drop").at[rows].set(outgoing, mode="drop")
    new_colours = colours.at[slots].set(corner_colours(choice.corners), mode="drop")
    return new_order, new_colours


def swap_size(config: SparseRSConfig, iteration: Array) -> Array:
    """m at `iteration` (int32, >= 1), from the static schedule."""
    schedule = config.schedule
    stage = jnp.sum((iteration >= jnp.asarray(schedule.starts, jnp.int32)).astype(jnp.int32))
    return jnp.asarray(schedule.sizes, jnp.int32)[stage]


def active(config: SparseRSConfig, state: SparseRSState) -> Array:
    """[B] bool: problems neither solved nor out of iterations."""
    return ~state.done & (state.generation < config.max_generations)


def initial_states(config: SparseRSConfig, key: Array) -> tuple[Array, Array]:
    """P random initial states of one problem: ([P, N] orders, [P, K, 3] colours)."""
    def one(proposal_key):
        order_key, corner_key = jax.random.split(proposal_key)
        order = jax.random.permutation(order_key, config.num_positions).astype(jnp.int32)
        return order, corner_colours(jax.random.bernoulli(corner_key, 0.5, (config.pixels, CHANNELS)))

    return jax.vmap(one)(jax.random.split(jax.random.fold_in(key, _INIT_TAG), config.population_size))


def candidate_genes(config: SparseRSConfig, orders: Array, colours: Array) -> Array:
    """[..., P, N] orders, [..., P, K, 3] colours -> [..., P, 5K] genes."""
    flat = jax.vmap(lambda o, c: genes(config, o, c))(
        orders.reshape(-1, orders.shape[-1]), colours.reshape(-1, config.pixels, CHANNELS))
    return flat.reshape(*orders.shape[:-1], config.num_dims)


def init(config: SparseRSConfig, params: SparseRSParams, key: Array, lower: Array | None = None,
         upper: Array | None = None, *, fitness_fn: FitnessFn, context: Any) -> SparseRSState:
    """Draws and evaluates the initial states of B problems; the best of P is kept.

    Args:
      config: static configuration; params: none used.
      key: [B] typed PRNG keys, one per problem.
      lower, upper: the attack's box, unused: positions come from the static grid and
        colours are corners (accepted so the slot code calls every search alike).
      fitness_fn, context: as in deattack.de.init.

    Returns:
      A SparseRSState at generation 0 with queries = P.
    """
    del params, lower, upper
    num_problems = key.shape[0]
    orders, colours = jax.vmap(lambda k: initial_states(config, k))(key)
    candidates = candidate_genes(config, orders, colours)
    fitness, solved = sanitize(*fitness_fn(candidates, context, jnp.ones((num_problems,), bool)))
    best = jax.vmap(best_index)(fitness, solved)
    take = jnp.arange(num_problems)
    return SparseRSState(
        order=orders[take, best], colours=colours[take, best], best_member=candidates[take, best],
        best_fitness=fitness[take, best], generation=jnp.zeros((num_problems,), jnp.int32),
        done=solved[take, best], queries=jnp.full((num_problems,), config.population_size, jnp.int32),
        key=key)


def _ask_one(config: SparseRSConfig, key: Array, generation: Array, order: Array,
             colours: Array) -> tuple[Array, Array]:
    size = swap_size(config, generation + 1)
    keys = jax.random.split(jax.random.fold_in(key, generation), config.population_size)
    return jax.vmap(lambda k: propose(config, order, colours, choose(config, draw(config, k, size), size)))(keys)


def ask(config: SparseRSConfig, params: SparseRSParams, state: SparseRSState) -> tuple[Array, Array, Array]:
    """Proposes iteration `state.generation + 1` of every problem.

    Returns:
      (candidates [B, P, 5K] to evaluate, orders [B, P, N], colours [B, P, K, 3]; pass
      all three to `tell`).
    """
    del params
    orders, colours = jax.vmap(lambda *a: _ask_one(config, *a))(
        state.key, state.generation, state.order, state.colours)
    return candidate_genes(config, orders, colours), orders, colours


def accept(state: SparseRSState, candidates: Array, orders: Array, colours: Array, fitness: Array,
           solved: Array) -> SparseRSState:
    """One problem's selection: the best proposal replaces the current state if it solves
    the problem or its loss is strictly lower (NaN counts as +inf and never solves)."""
    fitness, solved = sanitize(fitness, solved)
    best = best_index(fitness, solved)
    accepted = solved[best] | (fitness[best] < state.best_fitness)

    def pick(new, old):
        return jnp.where(accepted, new, old)

    return state.replace(order=pick(orders[best], state.order), colours=pick(colours[best], state.colours),
                         best_member=pick(candidates[best], state.best_member),
                         best_fitness=pick(fitness[best], state.best_fitness), done=solved[best])


def _tell_one(config: SparseRSConfig, state: SparseRSState, candidates, orders, colours, fitness,
              solved) -> SparseRSState:
    new = accept(state, candidates, orders, colours, fitness, solved)
    new = new.replace(generation=state.generation + 1, queries=state.queries + config.population_size)
    # Solved or exhausted problems freeze and are charged nothing (typed keys do not go
    # through jnp.where; the key never changes).
    is_active = ~state.done & (state.generation < config.max_generations)
    frozen = jax.tree.map(lambda n, o: jnp.where(is_active, n, o), new.replace(key=None), state.replace(key=None))
    return frozen.replace(key=state.key)


def tell(config: SparseRSConfig, params: SparseRSParams, state: SparseRSState, candidates: Array,
         orders: Array, colours: Array, fitness: Array, solved: Array) -> SparseRSState:
    """Accepts or rejects each problem's proposals; updates generation and queries.

    Problems that were done, or had run config.max_generations, before this call are
    left unchanged.

    Args:
      candidates, orders, colours: from `ask`.
      fitness: [B, P] float32 of the candidates; solved: [B, P] bool.
    """
    del params
    return jax.vmap(lambda *a: _tell_one(config, *a))(state, candidates, orders, colours, fitness, solved)


def step(config: SparseRSConfig, params: SparseRSParams, state: SparseRSState, fitness_fn: FitnessFn,
         context: Any) -> SparseRSState:
    """One iteration: ask -> evaluate -> tell."""
    candidates, orders, colours = ask(config, params, state)
    fitness, solved = fitness_fn(candidates, context, active(config, state))
    return tell(config, params, state, candidates, orders, colours, fitness, solved)


def run(config: SparseRSConfig, params: SparseRSParams, state: SparseRSState, fitness_fn: FitnessFn,
        context: Any, num_generations: int | Array | None = None) -> SparseRSState:
    """Runs iterations in a `lax.while_loop` until no problem is active (or for at most
    num_generations), exactly as deattack.de.run."""
    return run_while_active(lambda s: active(config, s), lambda s: step(config, params, s, fitness_fn, context),
                            state, num_generations)
