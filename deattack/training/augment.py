"""On-device training augmentations, by name.

Each augmentation is `fn(key, images float32 [N, 32, 32, 3] in [0, 255], labels [N],
**options) -> images` and runs inside the jitted train step. A training-time defense
is one more entry in `AUGMENTATIONS` and one name in the training config's
`augmentations`, not a new training loop. An augmentation that also takes `model`
(an `(apply_fn, variables)` pair: the network being trained, in eval mode) sees the
current weights, e.g. adversarial training with the DE attack itself.

Specs: an entry of `TrainConfig.augmentations` is a name ("crop") or a name with
options ("dead_pixels:k=1-3,p=0.5,values=saturated"). A comma-separated list
splits into specs, a token with "=" and no ":" belonging to the spec before it, so
`--set augmentations=crop,flip,dead_pixels:k=1-3,p=0.5` (or `deattack train
--augment crop,flip,dead_pixels:k=1-3,p=0.5`) means three augmentations. Options
live in the spec strings rather than in new TrainConfig fields so configs (and the
resumable runs that compare them) stay the same for every run without them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from deattack.attack import slots
from deattack.attack.config import AttackConfig
from deattack.attack.fitness import make_fitness
from deattack.attack.perturb import apply_pixels
from deattack.attack.problems import ProblemArrays
from deattack.overrides import parse_named_options

AugmentFn = Callable[..., jax.Array]
# (apply_fn(variables, images) -> logits, variables): the network in eval mode.
Model = tuple[Callable[[Any, jax.Array], jax.Array], Any]


def random_crop(key: jax.Array, images: jax.Array, labels: jax.Array, padding: int = 4) -> jax.Array:
    """Zero-pads by `padding` and crops back at a random offset (He et al. 2016)."""
    del labels
    n, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array, labels: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2."""
    del labels
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


# "saturated": each channel 0 or 255 (the 8 corners of the RGB cube, where one-pixel
# attacks mostly land); "mixed": each dead pixel picks one of the other four kinds.
DEAD_PIXEL_VALUES = ("random", "black", "white", "saturated", "mixed")


def _dead_colours(key: jax.Array, values: str, shape: tuple[int, ...], dtype) -> jax.Array:
    """Colours [..., C] of dead pixels, in [0, 255]."""
    kind_key, random_key, saturated_key = jax.random.split(key, 3)
    random = jax.random.randint(random_key, shape, 0, 256).astype(dtype)
    saturated = 255 * jax.random.bernoulli(saturated_key, 0.5, shape).astype(dtype)
    black, white = jnp.zeros(shape, dtype), jnp.full(shape, 255, dtype)
    kinds = {"random": random, "black": black, "white": white, "saturated": saturated}
    if values in kinds:
        return kinds[values]
    if values != "mixed":
        raise ValueError(f"dead_pixels: values={values!r} is unknown; known: {', '.join(DEAD_PIXEL_VALUES)}")
    choice = jax.random.randint(kind_key, shape[:-1] + (1,), 0, 4)
    return jnp.select([choice == i for i in range(4)], [random, black, white, saturated])


def dead_pixels(key: jax.Array, images: jax.Array, labels: jax.Array, *, k_min: int = 1, k_max: int = 1,
                probability: float = 0.5, values: str = "saturated") -> jax.Array:
    """Forces k random pixels of an image to dead values, with probability p an image.

    The "dead pixel" training of the one-pixel-attack write-ups: a network that has
    seen isolated odd pixels during training may learn to ignore one. k is drawn once
    per batch, uniformly in [k_min, k_max]; the k pixels of an image are distinct.
    Shapes are fixed: k_max positions are drawn for every image and the slots past k
    (and every slot of an image not hit) are dropped from the scatter.

    Args:
      key: PRNG key. images: float [N, H, W, C] in [0, 255]. labels: unused.
      k_min, k_max: range of dead pixels per image, 1 <= k_min <= k_max <= H * W.
      probability: chance that an image gets its dead pixels, [0, 1].
      values: one of DEAD_PIXEL_VALUES.

    Returns:
      images with the same shape and dtype; labels are not touched.
    """
    del labels
    n, h, w, c = images.shape
    if not 1 <= k_min <= k_max <= h * w:
        raise ValueError(f"dead_pixels: need 1 <= k_min <= k_max <= {h * w}, got k={k_min}-{k_max}")
    count_key, place_key, value_key, hit_key = jax.random.split(key, 4)
    count = jax.random.randint(count_key, (), k_min, k_max + 1)
    # The top k_max of uniform noise over the H*W positions: k_max distinct positions.
    _, positions = jax.lax.top_k(jax.random.uniform(place_key, (n, h * w)), k_max)
    hit = jax.random.bernoulli(hit_key, probability, (n,))
    keep = (jnp.arange(k_max) < count)[None, :] & hit[:, None]
    positions = jnp.where(keep, positions, h * w)  # out of bounds: dropped
    colours = _dead_colours(value_key, values, (n, k_max, c), images.dtype)
    flat = images.reshape(n, h * w, c).at[jnp.arange(n)[:, None], positions].set(colours, mode="drop")
    return flat.reshape(images.shape)


def de_attack(key: jax.Array, images: jax.Array, labels: jax.Array, model: Model, *,
              attack: Any, fraction: float = 0.25) -> jax.Array:
    """Adversarial training with the few-pixel DE attack itself, on device.

    A random `fraction` of the batch is attacked (untargeted) against the current
    weights with `attack`'s budget (population x generations, early stop on
    success), using the attack engine's own jitted init / run; each attacked image is
    replaced by the best candidate found, successful or not (as PGD adversarial
    training keeps its last iterate). So an image differs from its input in at most
    `attack.pixels` pixels. Costs up to fraction * N * P * (G + 1) forward passes a
    step (scripts/bench_defense_training.py measures it).

    Args:
      key: PRNG key. images: float [N, H, W, C] in [0, 255]. labels: int [N].
      model: (apply_fn, variables) of the network being trained, in eval mode.
      attack: a deattack.attack.AttackConfig (untargeted; its seed is unused, the
        key drives everything).
      fraction: share of the batch attacked, (0, 1]; at least one image.
    """

    apply_fn, variables = model
    n = images.shape[0]
    count = max(1, min(n, round(fraction * n)))
    select_key, problem_key = jax.random.split(key)
    chosen = jax.random.choice(select_key, n, (count,), replace=False)
    problems = ProblemArrays(images=images[chosen], labels=labels[chosen].astype(jnp.int32),
                               targets=jnp.full((count,), -1, jnp.int32))
    keys = jax.random.split(problem_key, count)
    static = attack.compile_key()
    fitness = make_fitness(static, apply_fn)
    params = attack.search_params()
    state = slots.init_slots(static, fitness, params, keys, variables, problems)
    state = slots.run_chunk(static, fitness, params, state, variables, problems, attack.max_generations)
    adversarial = jax.vmap(apply_pixels)(problems.images, fitness.project(problems.images, state.best_member))
    return images.at[chosen].set(jax.lax.stop_gradient(adversarial).astype(images.dtype))


AUGMENTATIONS: dict[str, AugmentFn] = {
    "crop": random_crop,
    "flip": random_flip,
    "dead_pixels": dead_pixels,
    "de_attack": de_attack,
}


# --- specs: "name:option=value,..." -> keyword arguments ------------------------------


def _integer(name: str, text: str, low: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"option {name}={text!r} must be an integer") from None
    if value < low:
        raise ValueError(f"option {name}={value} must be >= {low}")
    return value


def _fraction(name: str, text: str, allow_zero: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"option {name}={text!r} must be a number") from None
    if not (0.0 <= value <= 1.0) or (value == 0.0 and not allow_zero):
        raise ValueError(f"option {name}={value} must be in {'[0' if allow_zero else '(0'}, 1]")
    return value


def _range(name: str, text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    low_value = _integer(name, low.strip())
    high_value = _integer(name, high.strip()) if high.strip() else low_value
    if high_value < low_value:
        raise ValueError(f"option {name}={text!r}: the range is empty")
    return low_value, high_value


def _choice(name: str, text: str, known: Sequence[str]) -> str:
    if text not in known:
        raise ValueError(f"option {name}={text!r} is unknown; known: {', '.join(known)}")
    return text


def _crop_options(options: Mapping[str, str]) -> dict[str, Any]:
    return {"padding": _integer("padding", options.get("padding", "4"), low=0)}


def _dead_pixel_options(options: Mapping[str, str]) -> dict[str, Any]:
    k_min, k_max = _range("k", options.get("k", "1"))
    return {"k_min": k_min, "k_max": k_max, "probability": _fraction("p", options.get("p", "0.5")),
            "values": _choice("values", options.get("values", "saturated"), DEAD_PIXEL_VALUES)}


def _de_attack_options(options: Mapping[str, str]) -> dict[str, Any]:
    attack = AttackConfig(
        pixels=_integer("pixels", options.get("pixels", "1")),
        population_size=_integer("popsize", options.get("popsize", "20")),
        max_generations=_integer("generations", options.get("generations", "5"), low=0),
        fitness=_choice("fitness", options.get("fitness", "probability"), ("probability", "margin")),
        mutation=options.get("mutation", "rand/1"))
    return {"attack": attack, "fraction": _fraction("fraction", options.get("fraction", "0.25"), False)}


# name -> (option names a spec may give, their defaults, parser of the text options)
OPTIONS: dict[str, tuple[dict[str, str], Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "crop": ({"padding": "4"}, _crop_options),
    "flip": ({}, lambda options: {}),
    "dead_pixels": ({"k": "1", "p": "0.5", "values": "saturated"}, _dead_pixel_options),
    "de_attack": ({"fraction": "0.25", "pixels": "1", "popsize": "20", "generations": "5",
                   "fitness": "probability", "mutation": "rand/1"}, _de_attack_options),
}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """"dead_pixels:k=1-3,p=0.5" -> ("dead_pixels", {"k": "1-3", "p": "0.5"}).

    Raises:
      ValueError: unknown name or option, or an option without "=".
    """
    name, items = parse_named_options(spec)
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r} in {spec!r}; known: {', '.join(sorted(AUGMENTATIONS))}")
    options: dict[str, str] = {}
    for item, key, value in items:
        if value is None:
            raise ValueError(f"augmentation {spec!r}: option {item!r} is not key=value")
        if key not in OPTIONS[name][0]:
            known = ", ".join(OPTIONS[name][0]) or "none"
            raise ValueError(f"augmentation {name!r} has no option {key!r}; its options: {known}")
        options[key] = value
    return name, options


def split_specs(items: str | Iterable[str]) -> tuple[str, ...]:
    """Normalised specs: comma lists split, names stripped, options sorted.

    "crop,flip,dead_pixels:p=0.5,k=1-3" -> ("crop", "flip", "dead_pixels:k=1-3,p=0.5");
    ("crop", "flip") is returned unchanged; "" and "none" give ().
    """
    if isinstance(items, str):
        items = (items,)
    specs: list[list[str]] = []
    for item in items:
        for token in (t.strip() for t in str(item).split(",")):
            if not token or token == "none":
                continue
            if "=" in token and ":" not in token:
                if not specs:
                    raise ValueError(f"augmentation option {token!r} comes before any augmentation name")
                specs[-1].append(token)
            else:
                specs.append([token])
    normalised = []
    for parts in specs:
        spec = parts[0] + ("," + ",".join(parts[1:]) if len(parts) > 1 else "")
        name, options = parse_spec(spec)
        text = ",".join(f"{k}={options[k]}" for k in sorted(options))
        normalised.append(f"{name}:{text}" if text else name)
    return tuple(normalised)


def resolve(spec: str) -> tuple[str, dict[str, Any]]:
    """A spec's name and its validated keyword arguments (defaults filled in)."""
    name, options = parse_spec(spec)
    try:
        return name, OPTIONS[name][1](options)
    except ValueError as error:
        raise ValueError(f"augmentation {spec!r}: {error}") from None


def describe(specs: Sequence[str]) -> list[dict[str, Any]]:
    """JSON-able record of every option in force (defaults included), for checkpoint metadata."""
    records = []
    for spec in split_specs(specs):
        name, options = parse_spec(spec)
        records.append({"name": name, **OPTIONS[name][0], **options})
    return records


def defense_tag(specs: Sequence[str]) -> str:
    """The checkpoint-name suffix of a training-time defense: "deadpixel", "advde",
    both joined by "_", or "" for none (resnet20 + dead_pixels -> resnet20_deadpixel)."""
    names = {parse_spec(spec)[0] for spec in split_specs(specs)}
    return "_".join(tag for name, tag in (("dead_pixels", "deadpixel"), ("de_attack", "advde")) if name in names)


def needs_model(specs: Sequence[str]) -> bool:
    return any("model" in inspect.signature(AUGMENTATIONS[resolve(spec)[0]]).parameters
               for spec in split_specs(specs))


def compose(names: Sequence[str]) -> AugmentFn:
    """`augment(key, images, labels, model=None)` applying the specs in order, each
    with its own key (fold_in(key, position)).

    Raises:
      ValueError: an unknown name or option, or a bad option value (before any work).
    """
    functions = []
    for spec in split_specs(names):
        name, options = resolve(spec)
        function = AUGMENTATIONS[name]
        uses_model = "model" in inspect.signature(function).parameters
        functions.append((spec, functools.partial(function, **options), uses_model))

    def augment(key: jax.Array, images: jax.Array, labels: jax.Array, model: Model | None = None) -> jax.Array:
        for index, (spec, function, uses_model) in enumerate(functions):
            subkey = jax.random.fold_in(key, index)
            if uses_model:
                if model is None:
                    raise ValueError(f"augmentation {spec!r} attacks the model: pass model=(apply_fn, variables)")
                images = function(subkey, images, labels, model)
            else:
                images = function(subkey, images, labels)
        return images

    return augment
