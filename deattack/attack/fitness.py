"""The attack's fitness: pixel candidates [S, P, 5K] of S slots -> perturbed images ->
the victim's forward pass in microbatches -> (fitness, solved) by the criterion.

Only active slots' candidates are forwarded (packed to the front), and the microbatch
is a divisor of P on CPU so results are bit-identical across slot counts and devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from deattack.attack import confine, criteria, incremental
from deattack.attack.config import PRECISIONS, AttackConfig
from deattack.attack.perturb import apply_pixels
from deattack.attack.problems import ProblemArrays
from deattack.filters import neighbour_median
from deattack.victims.callback import CallbackApply

# Work per CPU forward call that keeps the caches warm: 64 ResNet-20 images (~75 MFLOP
# each by XLA's count). Measured on 2 cores: ResNet-20 peaks at batch 64, LeNet
# (~1.3 MFLOP) keeps gaining up to ~1,000 images (docs/results/bench_attack_cpu.jsonl).
CPU_FLOPS_PER_CALL = 64 * 75e6


# A callback victim's microbatch: larger than any generation, so one call carries all.
CALLBACK_MICROBATCH = 2**30


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
    # config.precision: the arithmetic of this scoring only (verdicts are judged in float32).
    precision: str = "default"

    def project(self, images: jax.Array, genes: jax.Array) -> jax.Array:
        """The candidates [N, D] of images [N, H, W, C] as they are scored (and to be recorded)."""
        if not self.neighbour_radius:
            return genes
        return confine.confine_batch(images, genes, self.neighbour_radius)

    def logits(self, candidates: jax.Array, variables: Any, problems: ProblemArrays,
               active: jax.Array) -> jax.Array:
        """Logits [S, P, C] of the candidates of active slots (zeros elsewhere).

        Candidates of active slots are packed to the front and only
        ceil(active rows / microbatch) forward calls run (a `fori_loop` with a traced
        trip count), so a finished slot costs no forward passes even before the host
        refills it: masking alone would still pay for it. The [S*P, H, W, C] batch is
        never materialised; each microbatch builds its own perturbed images.

        The forward is traced at the matmul precision of `self.precision`
        (config.PRECISIONS); "bf16" runs it on bfloat16 weights and images.
        """
        with _matmul_precision(self.precision):
            return self._logits(candidates, scoring_variables(variables, self.precision), problems, active)

    def _logits(self, candidates: jax.Array, variables: Any, problems: ProblemArrays,
                active: jax.Array) -> jax.Array:
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
        active_rows = jnp.sum(needed.astype(jnp.int32))
        num_chunks = (active_rows + size - 1) // size
        image_shape = problems.images.shape[1:]
        dtype = scoring_dtype(self.precision)
        num_classes = jax.eval_shape(
            self.apply_fn, variables, jax.ShapeDtypeStruct((size, *image_shape), dtype)).shape[-1]

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
                images = jax.vmap(apply_pixels)(chunk_images, chunk_genes).astype(dtype)
                if isinstance(self.apply_fn, CallbackApply):  # only real candidates leave the device
                    chunk_logits = self.apply_fn(variables, images, jnp.clip(active_rows - start, 0, size))
                else:
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

    def __call__(self, candidates: jax.Array, context: tuple[Any, ProblemArrays], active: jax.Array):
        variables, problems = context
        logits = self.logits(candidates, variables, problems, active)
        return criteria.evaluate(
            logits, problems.labels[:, None], problems.targets[:, None],
            mode=self.mode, fitness=self.fitness, confidence=self.confidence)


def scoring_dtype(precision: str) -> jnp.dtype:
    """The dtype candidate images are scored in: bfloat16 for "bf16", else float32."""
    return jnp.bfloat16 if precision == "bf16" else jnp.float32


def scoring_variables(variables: Any, precision: str) -> Any:
    """The weights the candidates are scored with: the floating ones cast to bfloat16 for
    "bf16" (Flax layers then compute in bf16), else unchanged."""
    if precision != "bf16":
        return variables
    return jax.tree.map(lambda leaf: leaf.astype(jnp.bfloat16) if jnp.issubdtype(leaf.dtype, jnp.floating)
                        else leaf, variables)


def _matmul_precision(precision: str):
    """The traced forward's jax.default_matmul_precision; "default" leaves the caller's own."""
    name = PRECISIONS[precision]
    return contextlib.nullcontext() if name is None else jax.default_matmul_precision(name)


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
    if isinstance(apply_fn, CallbackApply) and config.precision == "bf16":
        raise ValueError("precision='bf16' needs a JAX victim: a callback victim (from_callback, from_torch) "
                         "computes on the host in its own precision; use precision='default'")
    if isinstance(apply_fn, CallbackApply):
        # A host call per generation: every candidate of every active slot in one batch.
        microbatch = CALLBACK_MICROBATCH
    elif not microbatch:
        flops = forward_flops(apply_fn, variables, image_shape) if variables is not None else None
        microbatch = default_microbatch(config.population_size, flops_per_image=flops)
    return CandidateFitness(apply_fn=apply_fn, mode=config.mode, fitness=config.fitness,
                            confidence=float(config.confidence), microbatch=microbatch, split=split,
                            neighbour_radius=float(config.neighbour_radius), precision=config.precision)
