"""Inference-time defenses: an image transform in front of any victim.

`wrap(victim, "median3")` returns a Victim whose apply_fn is
`inner.apply_fn(variables, transform(images))`: same signature, same weights, so the
attack runs end to end through the transform (the adaptive attack against a
wrapper: the search sees exactly what the defended system computes). Victim specs
name them: "median3+resnet20", "repair:threshold=32+lenet", "median3+repair+lenet"
(transforms apply left to right, then the network).

- median3: 3x3 median filter per channel (the classic salt-and-pepper remedy).
  Borders repeat the edge (scipy.ndimage's default mode "reflect", numpy's
  "symmetric"), so it equals scipy.ndimage.median_filter(size=(3, 3, 1)).
- repair: detect-and-repair of isolated outliers: a pixel whose value differs from
  the median of its 8 neighbours by more than `threshold` in any channel gets that
  median (all channels). Borders mirror without repeating the edge (numpy
  "reflect"), so an outlier on the border is never its own neighbour. The median of
  8 values is the mean of the 4th and 5th (numpy's convention).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from deattack.filters import median3, outlier_repair
from deattack.overrides import parse_named_options
from deattack.victims.victim import Victim

# name -> (transform(images, **options), option name -> (default, parser)); one line a defense.
DEFENSES: dict[str, tuple[Callable[..., jax.Array], dict[str, tuple[Any, Callable[[str], Any]]]]] = {
    "median3": (median3, {}),
    "repair": (outlier_repair, {"threshold": (64.0, float)}),
}


@dataclasses.dataclass(frozen=True)
class Defense:
    """One transform with its options; hashable by value (part of jit cache keys)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, images: jax.Array) -> jax.Array:
        return DEFENSES[self.name][0](images, **dict(self.options))

    def spec(self, full: bool = False) -> str:
        """"repair:threshold=32"; options at their defaults are left out unless `full`."""
        defaults = {key: default for key, (default, _) in DEFENSES[self.name][1].items()}
        text = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options
                        if full or v != defaults.get(k))
        return f"{self.name}:{text}" if text else self.name


def parse_defense(spec: str) -> Defense:
    """"repair:threshold=32" -> Defense("repair", (("threshold", 32.0),)).

    Raises:
      ValueError: unknown defense or option, or a bad value.
    """
    name, items = parse_named_options(spec)
    if name not in DEFENSES:
        raise ValueError(f"unknown defense {name!r}; known: {', '.join(sorted(DEFENSES))}")
    known = DEFENSES[name][1]
    given: dict[str, Any] = {}
    for item, key, text in items:
        if text is None or key not in known:
            raise ValueError(f"defense {name!r}: bad option {item!r}; its options: {', '.join(known) or 'none'}")
        try:
            given[key] = known[key][1](text)
        except ValueError:
            raise ValueError(f"defense {name!r}: option {key}={text!r} is not valid") from None
    options = tuple((key, given.get(key, default)) for key, (default, _) in known.items())
    if name == "repair" and not 0.0 <= dict(options)["threshold"] <= 255.0:
        raise ValueError(f"defense 'repair': threshold must be in [0, 255], got {dict(options)['threshold']}")
    return Defense(name, options)


def split_victim_spec(spec: str) -> tuple[tuple[Defense, ...], str]:
    """"median3+repair+resnet20" -> ((median3, repair), "resnet20"): transforms, then the victim."""
    *defenses, inner = spec.split("+")
    if not inner.strip() or not defenses:
        raise ValueError(f"victim spec {spec!r} must be DEFENSE[+DEFENSE...]+VICTIM, e.g. median3+resnet20")
    return tuple(parse_defense(d) for d in defenses), inner.strip()


@dataclasses.dataclass(frozen=True)
class DefendedApply:
    """apply_fn of a wrapped victim: the transforms, then the inner network."""

    defenses: tuple[Defense, ...]
    inner: Callable[[Any, jax.Array], jax.Array]

    def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
        images = images.astype(jnp.float32)
        for defense in self.defenses:
            images = defense(images)
        return self.inner(variables, images)


def wrap(victim, defenses: str | Defense | tuple[Defense, ...], inner_name: str | None = None):
    """A Victim computing `victim(transforms(images))`, named "DEFENSES+INNER" (INNER:
    `inner_name`, e.g. the checkpoint name it was loaded by, else `victim.name`).

    The metadata is the inner victim's, with its test accuracy moved to
    "undefended_test_accuracy" (the wrapper changes accuracy; measure it) and the
    defense recorded under "defense".
    """

    if isinstance(defenses, str):
        defenses = tuple(parse_defense(d) for d in defenses.split("+"))
    elif isinstance(defenses, Defense):
        defenses = (defenses,)
    spec = "+".join(d.spec() for d in defenses)
    metadata: dict[str, Any] = dict(victim.metadata)
    if "test_accuracy" in metadata:
        metadata["undefended_test_accuracy"] = metadata.pop("test_accuracy")
    metadata.pop("test_accuracy_first_1000", None)
    metadata["defense"] = "+".join(filter(None, ["+".join(d.spec(full=True) for d in defenses),
                                                 metadata.get("defense")]))
    return Victim(name=f"{spec}+{inner_name or victim.name}", apply_fn=DefendedApply(tuple(defenses), victim.apply_fn),
                  variables=victim.variables, metadata=metadata)
