"""The on-device half of the attack: every candidate of every slot in one jitted
forward pass per generation, generations in `lax.while_loop` (via deattack.de.run,
or deattack.de.cma_es.run for search="cma-es").

The attack knows the optimiser only through init / run / active; the optimiser
knows the attack only as a fitness function on [S, P, D] candidates.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from deattack import de
from deattack.attack import confine, criteria, encoding, incremental
from deattack.attack.config import AttackConfig
from deattack.attack.perturb import apply_pixels
from deattack.de import cma_es
from deattack.filters import neighbour_median

# fold_in tag of a problem's initial population; DE generations use 0, 1, 2, ...
_POPULATION_TAG = 2**31 - 2


@struct.dataclass
class Problems:
    """What each slot attacks; every leaf has leading axis S (slots).

    images: float32 [S, H, W, C] in [0, 255]; labels: int32 [S]; targets: int32 [S]
    (-1 when untargeted).
    """

    images: jax.Array
    labels: jax.Array
    targets: jax.Array


# Work per CPU forward call that keeps the caches warm: 64 ResNet-20 images (~75 MFLOP
# each by XLA's count). Measured on 2 cores: ResNet-20 peaks at batch 64, LeNet
# (~1.3 MFLOP) keeps gaining up to ~1,000 images (docs/results/bench_attack_cpu.jsonl).
CPU_FLOPS_PER_CALL = 64 * 75e6


def forward_flops(apply_fn: Callable, variables: Any, image_shape: tuple[int, ...]) -> float | None:
    """XLA's FLOP estimate of one image's forward pass (None when the backend gives none)."""
    try:
        lowered = jax.jit(apply_fn).lower(
            variables, jax.ShapeDtypeStruct((1, *image_shape), jnp.float32))
        flops = (lowered.cost_analysis() or {}).get("flops")
    except Exception:  # cost analysis is best-effort; the size falls back to a safe default
        return None
    return float(flops) if flops and flops > 0 else None


def default_microbatch(population_size: int, backend: str | None = None,
                       flops_per_image: float | None = None) -> int:
    """Candidate images per forward call.

    CPU: the largest divisor of P that keeps one call near CPU_FLOPS_PER_CALL (64
    images without a FLOP estimate): small batches are cache-friendly there, but a
    cheap model needs more images per call to amortise dispatch. A divisor of P
    puts each candidate at the same position of its forward batch whatever the
    other slots do, and XLA's CPU matmuls can round differently by row position:
    so results are bit-identical across slot counts, refill orders and device
    counts. Accelerators: as many whole populations as fit in 8,192 images (large
    batches are what they need).
    """
    backend = backend or jax.default_backend()
    if backend == "cpu":
        cap = 64 if not flops_per_image else int(CPU_FLOPS_PER_CALL // flops_per_image)
        cap = max(16, min(cap, population_size))
        divisors = [d for d in range(1, cap + 1) if population_size % d == 0]
        return divisors[-1] if divisors[-1] >= 16 or population_size <= cap else cap
    return max(1, 8192 // population_size) * population_size


@dataclasses.dataclass(frozen=True)
class CandidateFitness:
    """DE fitness of pixel candidates: perturb, forward in microbatches, score.

    Hashable (a static argument of jit); `apply_fn(variables, images) -> logits`.
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    mode: str
    fitness: str
    confidence: float
    microbatch: int
    # forward="incremental": the victim cut after its first convolution (None = full forward).
    split: incremental.FirstConvSplit | None = None
    # config.neighbour_radius: candidates are scored as their projection (deattack.attack.confine).
    neighbour_radius: float = 0.0

    def project(self, images: jax.Array, genes: jax.Array) -> jax.Array:
        """The candidates [N, D] of images [N, H, W, C] as they are scored (and to be recorded)."""
        if not self.neighbour_radius:
            return genes
        return confine.confine_batch(images, genes, self.neighbour_radius)

    def logits(self, candidates: jax.Array, variables: Any, problems: Problems,
               active: jax.Array) -> jax.Array:
        """Logits [S, P, C] of the candidates of active slots (zeros elsewhere).

        Candidates of active slots are packed to the front and only
        ceil(active rows / microbatch) forward calls run (a `fori_loop` with a traced
        trip count), so a finished slot costs no forward passes even before the host
        refills it: masking alone would still pay for it. The [S*P, H, W, C] batch is
        never materialised; each microbatch builds its own perturbed images.
        """
        slots, population, dims = candidates.shape
        total = slots * population
        size = min(self.microbatch, total)
        padded_total = -(-total // size) * size
        genes = candidates.reshape(total, dims)
        owners = jnp.repeat(jnp.arange(slots), population)
        needed = active[owners]
        order = jnp.argsort(~needed, stable=True)  # active rows first, in their order
        packed_genes = jnp.pad(genes[order], ((0, padded_total - total), (0, 0)))
        packed_owners = jnp.pad(owners[order], (0, padded_total - total))
        num_chunks = (jnp.sum(needed.astype(jnp.int32)) + size - 1) // size
        image_shape = problems.images.shape[1:]
        num_classes = jax.eval_shape(
            self.apply_fn, variables, jax.ShapeDtypeStruct((size, *image_shape), jnp.float32)).shape[-1]

        split = self.split
        if split is not None:  # the clean images' first layer, once a generation for all slots
            padded_stems = split.pad_stem(split.stem(variables, problems.images))
        if self.neighbour_radius:  # the clean images' neighbour medians, once a generation for all slots
            medians = neighbour_median(problems.images)

        def forward(chunk, packed_logits):
            start = chunk * size
            chunk_genes = jax.lax.dynamic_slice_in_dim(packed_genes, start, size)
            chunk_owners = jax.lax.dynamic_slice_in_dim(packed_owners, start, size)
            chunk_images = problems.images[chunk_owners]
            if self.neighbour_radius:
                chunk_genes = jax.vmap(confine.confine_to_medians, in_axes=(0, 0, None))(
                    medians[chunk_owners], chunk_genes, self.neighbour_radius)
            if split is None:
                images = jax.vmap(apply_pixels)(chunk_images, chunk_genes)
                chunk_logits = self.apply_fn(variables, images)
            else:
                chunk_logits = split.candidate_logits(variables, padded_stems[chunk_owners], chunk_images,
                                                      chunk_genes)
            chunk_logits = chunk_logits.astype(jnp.float32)
            return jax.lax.dynamic_update_slice_in_dim(packed_logits, chunk_logits, start, 0)

        packed = jax.lax.fori_loop(0, num_chunks, forward,
                                   jnp.zeros((padded_total, num_classes), jnp.float32))
        logits = jnp.zeros((total, num_classes), jnp.float32).at[order].set(packed[:total])
        return logits.reshape(slots, population, num_classes)

    def __call__(self, candidates: jax.Array, context: tuple[Any, Problems], active: jax.Array):
        variables, problems = context
        logits = self.logits(candidates, variables, problems, active)
        return criteria.evaluate(
            logits, problems.labels[:, None], problems.targets[:, None],
            mode=self.mode, fitness=self.fitness, confidence=self.confidence)


def make_fitness(config: AttackConfig, apply_fn: Callable, variables: Any = None,
                 image_shape: tuple[int, ...] = (32, 32, 3), module: Any = None) -> CandidateFitness:
    """The attack's fitness; with `variables` the microbatch is sized to the model's cost.

    `module` (the victim's Flax module) is needed for config.forward="incremental".
    """
    split = None
    if config.forward == "incremental":
        if module is None or variables is None:
            raise ValueError("forward='incremental' needs the victim's Flax module and weights (a model "
                             "checkpoint such as 'lenet'; a wrapped victim like 'median3+lenet' has none): "
                             "use forward='full'")
        split = incremental.split_first_conv(module, variables, tuple(image_shape), pixels=config.pixels)
    microbatch = config.microbatch
    if not microbatch:
        flops = forward_flops(apply_fn, variables, image_shape) if variables is not None else None
        microbatch = default_microbatch(config.population_size, flops_per_image=flops)
    return CandidateFitness(apply_fn=apply_fn, mode=config.mode, fitness=config.fitness,
                            confidence=float(config.confidence), microbatch=microbatch, split=split,
                            neighbour_radius=float(config.neighbour_radius))


# The optimiser's state and params: DE's, or CMA-ES's for search="cma-es".
SearchState = de.DEState | cma_es.CMAESState
SearchParams = de.DEParams | cma_es.CMAESParams


def _optimiser(config: AttackConfig):
    """The module (init / run / active) of the config's search: deattack.de or cma_es."""
    return cma_es if config.search == "cma-es" else de


@functools.partial(jax.jit, static_argnames=("config", "fitness"))
def init_slots(config: AttackConfig, fitness: CandidateFitness, params: SearchParams,
               keys: jax.Array, variables: Any, problems: Problems) -> SearchState:
    """Initial optimiser state of S slots; keys [S] are the problems' own PRNG keys."""
    num_slots = keys.shape[0]
    height, width = problems.images.shape[1:3]
    lower, upper = encoding.box(config.pixels, height, width)
    lower = jnp.broadcast_to(lower, (num_slots, lower.shape[0]))
    upper = jnp.broadcast_to(upper, (num_slots, upper.shape[0]))
    if config.search == "cma-es":  # its first generation is its own Gaussian: no `init` population
        return cma_es.init(config.search_config(), params, keys, lower, upper,
                           fitness_fn=fitness, context=(variables, problems))
    initialise = encoding.INITIALISATIONS[config.init]
    population = jax.vmap(lambda key: initialise(
        jax.random.fold_in(key, _POPULATION_TAG), config.population_size, config.pixels, height, width))(keys)
    return de.init(config.de_config(), params, keys, lower, upper,
                   population, fitness_fn=fitness, context=(variables, problems))


SLOT_AXIS = "slots"


@functools.partial(jax.jit, static_argnames=("config", "fitness", "mesh"))
def run_chunk(config: AttackConfig, fitness: CandidateFitness, params: SearchParams,
              state: SearchState, variables: Any, problems: Problems, num_generations,
              mesh: jax.sharding.Mesh | None = None) -> SearchState:
    """Up to `num_generations` more generations of every active slot, on device.

    With a mesh, the slot axis is split over its devices (`shard_map`): each device
    evolves its own slots in its own `while_loop`, packs its own active candidates
    and stops when its slots are done; nothing crosses devices inside the loop.
    """
    def evolve(state, problems, params, variables, num_generations):
        return _optimiser(config).run(config.search_config(), params, state, fitness, (variables, problems),
                                      num_generations)

    if mesh is None or mesh.size == 1:
        return evolve(state, problems, params, variables, num_generations)
    slots = jax.sharding.PartitionSpec(SLOT_AXIS)
    replicated = jax.sharding.PartitionSpec()
    sharded = jax.shard_map(evolve, mesh=mesh, in_specs=(slots, slots, replicated, replicated, replicated),
                            out_specs=slots, check_vma=False)
    return sharded(state, problems, params, variables, num_generations)


def slot_mesh(num_devices: int = 0) -> jax.sharding.Mesh | None:
    """A 1-D mesh over the first `num_devices` local devices (0 = all); None for one."""
    devices = jax.local_devices()
    count = len(devices) if num_devices <= 0 else num_devices
    if count > len(devices):
        raise ValueError(f"devices={num_devices} but only {len(devices)} local devices exist")
    if count == 1:
        return None
    return jax.sharding.Mesh(np.asarray(devices[:count]), (SLOT_AXIS,))


@jax.jit
def insert_slots(state: SearchState, problems: Problems, new_state: SearchState,
                 new_problems: Problems, slot_indices: jax.Array) -> tuple[SearchState, Problems]:
    """Writes new rows into the given slots; an index equal to S (padding) is dropped."""
    def put(old, new):
        return old.at[slot_indices].set(new, mode="drop")

    return jax.tree.map(put, state, new_state), jax.tree.map(put, problems, new_problems)


@functools.partial(jax.jit, static_argnames=("config",))
def slot_status(config: AttackConfig, state: SearchState) -> dict[str, jax.Array]:
    """The small per-slot facts the host needs between chunks."""
    return {"active": _optimiser(config).active(config.search_config(), state), "done": state.done,
            "queries": state.queries, "generation": state.generation,
            "best_member": state.best_member, "best_fitness": state.best_fitness}
