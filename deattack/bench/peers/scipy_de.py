"""`scipy.optimize.differential_evolution` driving the JAX victim: the host-loop baseline.

Everything but the evolution loop is deattack's own: the same initial population (the
problem's PRNG key, as the engine draws it), the same pixel decoding and the same
jitted, microbatched fitness (deattack.attack.fitness.CandidateFitness on one slot).
So the gap to deattack is the loop itself: scipy's NumPy generation step and one
host round trip per generation, against generations fused in `lax.while_loop`.

Parameter mapping (scipy 1.17 `differential_evolution`, read from its source):
- population: `init` is the [P, D] array of the engine's initial population, so scipy
  evolves exactly P members (its `popsize` multiplier is then ignored).
- mutation "rand/1" -> strategy "rand1bin" (also best/1, rand/2, best/2,
  current-to-best/1); `mutation=F` as a float (no dithering).
- crossover "none" -> recombination=1.0: scipy's binomial crossover takes gene j
  from the mutant when U < CR or j is the fill point, so CR = 1 is the whole mutant,
  the paper's DE/rand/1 without crossover. "bin"/"exp" -> "...bin"/"...exp" with CR.
- vectorized=True (implies updating="deferred": one objective call of P candidates
  a generation, selection after it, as the engine does); polish=False; maxiter=G,
  so the budget is P * (G + 1) queries; tol=0, atol=-1: never stop on "convergence"
  (saturated probabilities can make every energy equal).
- early stop: the engine stops as soon as any evaluated candidate succeeds (at
  generation 0 too). scipy's callback runs only after a generation, and not after
  the initial population, so the objective itself raises once a success is seen:
  not one query more than the engine would spend.
- not mapped: bound handling. scipy redraws an out-of-box gene uniformly; the engine
  reflects coordinates and clips colours (config.coordinate_bounds/colour_bounds).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack import encoding
from deattack.attack.config import AttackConfig
from deattack.attack.fitness import make_fitness
from deattack.attack.perturb import apply_pixels
from deattack.attack.problems import ProblemArrays, problem_keys
from deattack.attack.slots import POPULATION_TAG
from deattack.bench.peers.result import AttackRun
from deattack.victims.victim import predict

STRATEGIES = {"rand/1": "rand1", "best/1": "best1", "rand/2": "rand2", "best/2": "best2",
              "current-to-best/1": "currenttobest1"}


class _Solved(Exception):
    """Raised by the objective once a candidate has succeeded: stops scipy's loop."""


def scipy_settings(config: AttackConfig) -> dict:
    """scipy.optimize.differential_evolution keyword arguments for the config.

    Raises:
      ValueError: the config uses an operator or adaptation scipy does not have.
    """
    if config.mutation not in STRATEGIES:
        raise ValueError(f"mutation={config.mutation!r} has no scipy strategy; mappable: {', '.join(STRATEGIES)}")
    if config.adaptation != "constant":
        raise ValueError(f"adaptation={config.adaptation!r}: scipy's DE has constant F and CR only")
    crossover = "exp" if config.crossover == "exp" else "bin"
    recombination = 1.0 if config.crossover == "none" else float(config.crossover_rate)
    return dict(strategy=STRATEGIES[config.mutation] + crossover, mutation=float(config.differential_weight),
                recombination=recombination, maxiter=config.max_generations, polish=False,
                vectorized=True, updating="deferred", tol=0.0, atol=-1.0)


class _Objective:
    """The vectorised objective of one problem: counts every image it evaluates."""

    def __init__(self, evaluate, image: np.ndarray, label: int, target: int):
        self.evaluate, self.image, self.label, self.target = evaluate, image, label, target
        self.queries = 0
        self.solution: np.ndarray | None = None

    def __call__(self, genes_by_column: np.ndarray) -> np.ndarray:
        if self.solution is not None:
            raise _Solved
        genes = np.ascontiguousarray(genes_by_column.T, np.float32)  # scipy sends [D, S]
        fitness, success = self.evaluate(genes, self.image, self.label, self.target)
        fitness, success = np.asarray(fitness), np.asarray(success)
        self.queries += len(genes)
        if success.any():
            self.solution = genes[int(np.argmax(success))]
        return np.where(np.isnan(fitness), np.inf, fitness).astype(np.float64)


def _evaluator(config: AttackConfig, victim, image_shape: tuple[int, ...]):
    # The runner's microbatch; always the full forward: the peer is scipy's DE, not our evaluation.
    fitness_fn = make_fitness(dataclasses.replace(config, forward="full"), victim.apply_fn, victim.variables,
                              image_shape)

    @jax.jit
    def evaluate(genes, image, label, target):
        problems = ProblemArrays(images=image[None], labels=label[None], targets=target[None])
        fitness, success = fitness_fn(genes[None], (victim.variables, problems), jnp.ones((1,), bool))
        return fitness[0], success[0]

    def call(genes, image, label, target):
        return evaluate(jnp.asarray(genes), jnp.asarray(image, jnp.float32),
                        jnp.asarray(label, jnp.int32), jnp.asarray(target, jnp.int32))

    return call


def initial_population(config: AttackConfig, image_index: int, target: int) -> np.ndarray:
    """[P, D]: the initial population the engine draws for this problem."""
    key = problem_keys(config.seed, [image_index], [target])[0]
    initialise = encoding.INITIALISATIONS[config.init]
    return np.asarray(initialise(jax.random.fold_in(key, POPULATION_TAG), config.population_size,
                                 config.pixels), np.float64)


def scipy_attack(victim, images: np.ndarray, labels: np.ndarray, config: AttackConfig, *,
                 image_indices: Sequence[int] | None = None, targets: np.ndarray | None = None) -> AttackRun:
    """scipy's DE on each image in turn, at the engine's budget P * (G + 1).

    Args:
      victim: a deattack Victim. images: [N, 32, 32, 3] in [0, 255]; labels: [N] int.
      config: the attack (untargeted, or targeted with `targets` [N]).
      image_indices: global ids seeding each image's initial population (default 0..N-1).

    Returns:
      AttackRun: success judged by the victim on the returned image, queries counted at
      the objective, wall time per image (the fitness is compiled before timing).
    """
    from scipy.optimize import differential_evolution

    if config.mode == "targeted" and targets is None:
        raise ValueError("targeted scipy runs need targets [N] (one target class an image)")
    if config.neighbour_radius:
        raise ValueError("the scipy peer runs the paper's unconstrained colours: neighbour_radius must be 0")
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, np.int64)
    indices = np.arange(len(images)) if image_indices is None else np.asarray(image_indices, np.int64)
    chosen = np.full(len(images), -1) if config.mode == "untargeted" else np.asarray(targets, np.int64)
    settings = scipy_settings(config)
    lower, upper = (np.asarray(bound, np.float64) for bound in encoding.box(config.pixels))
    bounds = list(zip(lower, upper))
    evaluate = _evaluator(config, victim, images.shape[1:])
    if len(images):  # compile outside the timed region
        jax.block_until_ready(evaluate(np.zeros((config.population_size, config.num_dims), np.float32),
                                       images[0], labels[0], chosen[0]))
    success, queries, walls, finals = [], [], [], []
    for row in range(len(images)):
        objective = _Objective(evaluate, images[row], int(labels[row]), int(chosen[row]))
        population = initial_population(config, int(indices[row]), int(chosen[row]))
        started = time.perf_counter()
        try:
            result = differential_evolution(objective, bounds, init=population,
                                            rng=np.random.default_rng([config.seed, int(indices[row])]),
                                            **settings)
            best = np.asarray(result.x, np.float32)
        except _Solved:
            best = objective.solution
        walls.append(time.perf_counter() - started)
        queries.append(objective.queries)
        finals.append(np.asarray(apply_pixels(jnp.asarray(images[row]), jnp.asarray(best))))
    if finals:
        predicted = np.argmax(predict(victim, np.stack(finals), batch_size=min(len(finals), 64)), -1)
        success = predicted != labels if config.mode == "untargeted" else predicted == chosen
    return AttackRun("scipy", np.asarray(success, bool), np.asarray(queries, np.int64), np.asarray(walls),
                     settings={"population_size": config.population_size,
                               "max_generations": config.max_generations,
                               "strategy": settings["strategy"], "F": settings["mutation"],
                               "recombination": settings["recombination"]})
