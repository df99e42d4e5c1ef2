"""Per-dimension structure of the search space, as generic metadata.

The optimiser knows nothing about images; a problem may still tell it what kind of
value each dimension holds, so that operators can exploit it (the attack says: pixel
coordinates are "integer", colours are "extreme"). Each dimension has one kind:

  real     continuous; nothing known (the default).
  integer  the objective reads only floor(gene): the dimension is a lattice of unit
           cells, and a neighbouring value is one cell away.
  extreme  good values tend to lie at the bounds, so the box's corners are worth
           trying (e.g. saturated colours in few-pixel attacks).

Operators that ignore the kinds (every textbook DE operator) behave exactly as
without them. The kinds are static (in DEConfig, like the bound-handling names);
the box is traced (per problem, in DEState).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import struct

Array = jax.Array

DIM_KINDS = ("real", "integer", "extreme")


@struct.dataclass
class SearchSpace:
    """One problem's box and the kind of each dimension.

    Attributes:
      lower: [D] float32 lower bounds.
      upper: [D] float32 upper bounds.
      integer: [D] bool, dimensions of kind "integer".
      extreme: [D] bool, dimensions of kind "extreme".
    """

    lower: Array
    upper: Array
    integer: Array
    extreme: Array


def kind_masks(kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(integer [D] bool, extreme [D] bool) from one kind name per dimension."""
    kinds = np.asarray(kinds)
    return kinds == "integer", kinds == "extreme"


def make_space(lower: Array, upper: Array, kinds: tuple[str, ...]) -> SearchSpace:
    integer, extreme = kind_masks(kinds)
    return SearchSpace(lower=lower, upper=upper, integer=integer, extreme=extreme)
