"""Static configuration and traced tunables of the differential-evolution optimiser.

`DEConfig` holds what fixes shapes or code paths (population size, dimension,
operator names): it is hashable and passed to `jax.jit` as a static argument.
`DEParams` holds the tunables (F, CR, adaptation rates): it is a pytree of traced
values, so sweeping them never recompiles (the evosax split of static vs traced).
"""

from __future__ import annotations

import dataclasses
import math

from flax import struct

from deattack.de import adaptation as adaptation_lib
from deattack.de import bounds as bounds_lib
from deattack.de import crossover as crossover_lib
from deattack.de import mutation as mutation_lib
from deattack.de import space as space_lib


def _check_name(field: str, name: str, registry: dict) -> None:
    if name not in registry:
        raise ValueError(
                f"{field}={name!r} is unknown; known names: {sorted(registry)}")


@dataclasses.dataclass(frozen=True)
class DEConfig:
    """What fixes shapes and code paths; hashable, a static argument of `jax.jit`.

    Attributes:
        population_size: P, members per problem.
        num_dims: D, genes per member.
        mutation: a name in `mutation.MUTATIONS`, e.g. "rand/1" (Su et al. 2019).
        crossover: a name in `crossover.CROSSOVERS`: "none", "bin" or "exp".
        adaptation: a name in `adaptation.ADAPTATIONS`: "constant", "jde", "jade",
            "shade".
        bounds: a name in `bounds.BOUNDS` for every dimension, or a tuple of D names,
            one per dimension (e.g. reflect for pixel coordinates, clip for colours).
        dim_kinds: a name in `space.DIM_KINDS` for every dimension, or a tuple of D
            names ("real", "integer", "extreme"): generic structure that some
            operators exploit (e.g. "rand/1-snap"); the textbook ones ignore it.
        max_generations: generations after which a problem stops, solved or not.
        archive: keep the JADE archive of replaced parents, used by
            "current-to-pbest/1" to draw x_r2 from population U archive. None means
            "on exactly when the mutation is current-to-pbest/1".
    """

    population_size: int
    num_dims: int
    mutation: str = "rand/1"
    crossover: str = "none"
    adaptation: str = "constant"
    bounds: tuple[str, ...] | str = "clip"
    dim_kinds: tuple[str, ...] | str = "real"
    max_generations: int = 100
    archive: bool | None = None

    def __post_init__(self):
        _check_name("mutation", self.mutation, mutation_lib.MUTATIONS)
        _check_name("crossover", self.crossover, crossover_lib.CROSSOVERS)
        _check_name("adaptation", self.adaptation, adaptation_lib.ADAPTATIONS)
        if self.num_dims < 1:
            raise ValueError(f"num_dims must be >= 1, got {self.num_dims}")
        if isinstance(self.bounds, str):
            _check_name("bounds", self.bounds, bounds_lib.BOUNDS)
        else:
            # A list would make the config unhashable: store a tuple.
            object.__setattr__(self, "bounds", tuple(self.bounds))
            if len(self.bounds) != self.num_dims:
                raise ValueError(
                        f"bounds has {len(self.bounds)} names but num_dims={self.num_dims}")
            for name in self.bounds:
                _check_name("bounds", name, bounds_lib.BOUNDS)
        known_kinds = dict.fromkeys(space_lib.DIM_KINDS)
        if isinstance(self.dim_kinds, str):
            _check_name("dim_kinds", self.dim_kinds, known_kinds)
        else:
            object.__setattr__(self, "dim_kinds", tuple(self.dim_kinds))
            if len(self.dim_kinds) != self.num_dims:
                raise ValueError(
                        f"dim_kinds has {len(self.dim_kinds)} names but num_dims={self.num_dims}")
            for name in self.dim_kinds:
                _check_name("dim_kinds", name, known_kinds)
        minimum = mutation_lib.MIN_POPULATION_SIZE[self.mutation]
        if self.population_size < minimum:
            raise ValueError(
                    f"population_size={self.population_size} is too small for mutation "
                    f"{self.mutation!r}, which needs at least {minimum} members")
        if self.max_generations < 0:
            raise ValueError(
                    f"max_generations must be >= 0, got {self.max_generations}")
        uses_archive = self.mutation in mutation_lib.ARCHIVE_MUTATIONS
        if self.archive is None:
            object.__setattr__(self, "archive", uses_archive)
        elif self.archive and not uses_archive:
            raise ValueError(
                    f"archive=True but mutation {self.mutation!r} does not read an "
                    f"archive; only {sorted(mutation_lib.ARCHIVE_MUTATIONS)} do")

    @property
    def bounds_per_dim(self) -> tuple[str, ...]:
        """The bound-handling name of each of the D dimensions."""
        return bounds_lib.per_dimension(self.bounds, self.num_dims)

    @property
    def kinds_per_dim(self) -> tuple[str, ...]:
        """The kind ("real", "integer", "extreme") of each of the D dimensions."""
        if isinstance(self.dim_kinds, str):
            return (self.dim_kinds,) * self.num_dims
        return self.dim_kinds

    @property
    def archive_size(self) -> int:
        """Static capacity of the archive: P when used (as in JADE), else 0."""
        return self.population_size if self.archive else 0


@struct.dataclass
class DEParams:
    """Traced tunables; changing them never recompiles.

    Attributes:
        differential_weight: F, (0, 2]; the constant scheme's F and jDE's initial F.
        crossover_rate: CR, [0, 1]; the constant scheme's CR and jDE's initial CR.
        pbest_fraction: p, (0, 1]; current-to-pbest/1 picks x_pbest among the
            round(p P) best members (at least one).
        jde_tau_f: tau_1, [0, 1]; probability that jDE redraws a member's F.
        jde_tau_cr: tau_2, [0, 1]; probability that jDE redraws a member's CR.
        jde_f_lower: F_l, > 0; jDE draws F uniformly in [F_l, F_l + F_u].
        jde_f_upper: F_u, > 0.
        jade_c: c, [0, 1]; JADE learning rate of mu_F and mu_CR.
        adaptive_f_init: initial mu_F of JADE and SHADE's memory, (0, 1].
        adaptive_cr_init: initial mu_CR of JADE and SHADE's memory, [0, 1].
        adaptive_f_scale: scale of JADE/SHADE's Cauchy draw of F, > 0.
        adaptive_cr_scale: standard deviation of JADE/SHADE's normal draw of CR, > 0.
        snap_probability: rho, [0, 1]; "rand/1-snap" moves each "extreme" gene of
            a mutant to its nearer bound with this probability, and
            "rand/1-snap-local" redraws each "extreme" gene of a local move as a
            random bound with it.
        local_probability: lambda, [0, 1]; fraction of members whose trial in
            "rand/1-snap-local" is a local move around a p-best member.
    """

    differential_weight: float = 0.5
    crossover_rate: float = 0.9
    pbest_fraction: float = 0.1
    jde_tau_f: float = 0.1
    jde_tau_cr: float = 0.1
    jde_f_lower: float = 0.1
    jde_f_upper: float = 0.9
    jade_c: float = 0.1
    adaptive_f_init: float = 0.5
    adaptive_cr_init: float = 0.5
    adaptive_f_scale: float = 0.1
    adaptive_cr_scale: float = 0.1
    snap_probability: float = 0.5
    local_probability: float = 0.5

    def validate(self) -> DEParams:
        """Checks concrete values on the host; returns self.

        Raises:
            ValueError: naming the first field out of its range.
        """
        # (field, low, high, low_inclusive, high_inclusive)
        ranges = (
                ("differential_weight", 0.0, 2.0, False, True),
                ("crossover_rate", 0.0, 1.0, True, True),
                ("pbest_fraction", 0.0, 1.0, False, True),
                ("jde_tau_f", 0.0, 1.0, True, True),
                ("jde_tau_cr", 0.0, 1.0, True, True),
                ("jde_f_lower", 0.0, math.inf, False, True),
                ("jde_f_upper", 0.0, math.inf, False, True),
                ("jade_c", 0.0, 1.0, True, True),
                ("adaptive_f_init", 0.0, 1.0, False, True),
                ("adaptive_cr_init", 0.0, 1.0, True, True),
                ("adaptive_f_scale", 0.0, math.inf, False, True),
                ("adaptive_cr_scale", 0.0, math.inf, False, True),
                ("snap_probability", 0.0, 1.0, True, True),
                ("local_probability", 0.0, 1.0, True, True),
        )
        for field, low, high, low_inclusive, high_inclusive in ranges:
            value = float(getattr(self, field))
            above = value >= low if low_inclusive else value > low
            below = value <= high if high_inclusive else value < high
            if not (above and below) or math.isnan(value):
                left = "[" if low_inclusive else "("
                right = "]" if high_inclusive else ")"
                raise ValueError(
                        f"{field}={value} is outside {left}{low}, {high}{right}")
        return self
