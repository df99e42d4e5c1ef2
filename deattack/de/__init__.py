"""Differential evolution for B independent box-constrained problems, on JAX.

Knows nothing about images: the attack supplies a fitness function. deattack.es.cma_es
is a CMA-ES baseline with the same batched interface (init / ask / tell / step / run).
"""

from deattack.de.adaptation import ADAPTATIONS, Adaptation
from deattack.de.bounds import BOUNDS
from deattack.de.config import DEConfig, DEParams
from deattack.de.crossover import CROSSOVERS
from deattack.de.engine import FitnessFn, active, ask, init, run, step, tell
from deattack.de.mutation import MUTATIONS, draw_distinct_indices
from deattack.de.space import DIM_KINDS, SearchSpace
from deattack.de.state import DEState

__all__ = [
    "ADAPTATIONS",
    "Adaptation",
    "BOUNDS",
    "CROSSOVERS",
    "DIM_KINDS",
    "DEConfig",
    "DEParams",
    "DEState",
    "FitnessFn",
    "MUTATIONS",
    "SearchSpace",
    "active",
    "ask",
    "draw_distinct_indices",
    "init",
    "run",
    "step",
    "tell",
]
