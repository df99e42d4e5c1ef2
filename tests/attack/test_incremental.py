"""forward="incremental" (deattack.attack.incremental): the first convolution of a
perturbed image rebuilt from the clean image's output plus one kernel patch per changed
pixel equals the model's own convolution of the perturbed image; the cut model equals
the whole one; the attack gives the full forward's results; unsupported victims are
refused by name."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.attack import AttackConfig, attack, incremental
from deattack.attack.perturb import apply_pixels
from deattack.models import get_model, normalize
from deattack.victims.victim import Victim

IMAGE_SHAPE = (32, 32, 3)


class FirstConv(nn.Module):
    """normalize -> one convolution (the padding under test) -> ReLU -> pool -> dense."""

    kernel: tuple[int, int] = (5, 5)
    padding: object = "SAME"
    strides: int = 1
    scale_input: float = 1.0

    @nn.compact
    def __call__(self, images, train: bool = False):
        x = normalize(images) * self.scale_input
        x = nn.relu(nn.Conv(4, self.kernel, (self.strides, self.strides), padding=self.padding)(x))
        x = nn.Conv(3, (3, 3))(x)
        return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))


class NoConv(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        return nn.Dense(10)(normalize(images).reshape((images.shape[0], -1)))


def _init(module):
    return module.init(jax.random.key(0), jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))


def _candidates(rng, count: int, pixels: int) -> np.ndarray:
    """Candidates with pixels on every corner and border, some sharing a location."""
    genes = np.zeros((count, 5 * pixels), np.float32)
    for i in range(count):
        for k in range(pixels):
            x, y = (int(rng.integers(32)), int(rng.integers(32)))
            if i % 4 == 0:
                x, y = (0, 31)[k % 2], (0, 31)[(k // 2) % 2]
            elif i % 4 == 1 and k > 0:
                x, y = genes[i, 0], genes[i, 1]  # the same location as pixel 0: the later one wins
            genes[i, 5 * k:5 * k + 5] = (x, y, *rng.uniform(0, 255, 3))
    return genes


CASES = [  # (name, module, pixels); 3 pixels include shared locations (see _candidates)
    ("lenet", None, 1),  # 5x5 VALID, the registry's LeNet
    ("lenet", None, 3),
    ("resnet20", None, 3),  # 3x3, explicit padding 1, no bias
    ("same-5x5", FirstConv((5, 5), "SAME"), 1),
    ("same-4x4", FirstConv((4, 4), "SAME"), 3),  # even kernel: SAME pads one more row / column at the end
    ("explicit-asymmetric", FirstConv((3, 5), ((2, 0), (1, 3))), 3),
]


@pytest.mark.parametrize("name, module, pixels", CASES, ids=[f"{c[0]}-{c[2]}px" for c in CASES])
def test_patched_first_layer_equals_the_convolution_of_the_perturbed_image(name, module, pixels):
    module = module or get_model(name)
    variables = _init(module)
    split = incremental.split_first_conv(module, variables, IMAGE_SHAPE, pixels=pixels)
    rng = np.random.default_rng(pixels)
    images = jnp.asarray(rng.uniform(0, 255, (3, *IMAGE_SHAPE)), jnp.float32)
    genes = jnp.asarray(_candidates(rng, 12, pixels))
    owners = jnp.arange(12) % 3
    perturbed = jax.vmap(apply_pixels)(images[owners], genes)
    expected = split.stem(variables, perturbed)  # the model's own convolution of each perturbed image
    padded = split.pad_stem(split.stem(variables, images))
    patched = jax.vmap(split.perturbed_stem, in_axes=(None, 0, 0, 0))(
        split.kernel(variables), padded[owners], images[owners], genes)
    assert patched.shape == expected.shape
    np.testing.assert_allclose(np.asarray(patched), np.asarray(expected), rtol=1e-5, atol=1e-4)
    # ... and the rest of the network from there equals the whole model on the perturbed images.
    np.testing.assert_allclose(np.asarray(split.head(variables, patched, IMAGE_SHAPE)),
                               np.asarray(module.apply(variables, perturbed, train=False)), rtol=1e-4, atol=1e-4)


def test_the_split_finds_the_first_convolution_and_its_padding():
    split = incremental.split_first_conv(get_model("lenet"), _init(get_model("lenet")))
    assert (split.kernel_path, split.kernel_size, split.padding) == (("Conv_0",), (5, 5), ((0, 0), (0, 0)))
    split = incremental.split_first_conv(FirstConv((4, 4), "SAME"), _init(FirstConv((4, 4), "SAME")))
    assert split.padding == ((1, 2), (1, 2))  # lax's SAME at stride 1: floor((k-1)/2) first
    assert incremental.split_first_conv(get_model("lenet"), _init(get_model("lenet"))) == \
        incremental.split_first_conv(get_model("lenet"), _init(get_model("lenet")))  # a jit cache hit


@pytest.mark.parametrize("module, message", [
    (FirstConv(strides=2), "strides"),
    (FirstConv(scale_input=2.0), "not normalize"),
    (FirstConv(padding="CIRCULAR"), "padding"),
    (NoConv(), "no nn.Conv"),
])
def test_unsupported_first_layers_are_refused_by_name(module, message):
    with pytest.raises(ValueError, match=message):
        incremental.split_first_conv(module, _init(module))


def test_the_check_catches_a_wrong_patch(monkeypatch):
    """The construction-time check is what stands between a broken cut and the search."""
    module = get_model("lenet")
    original = incremental.FirstConvSplit.perturbed_stem

    def unflipped(self, kernel, padded_stem, image, genes):  # the kernel's window not mirrored
        return original(self, kernel[::-1, ::-1], padded_stem, image, genes)

    monkeypatch.setattr(incremental.FirstConvSplit, "perturbed_stem", unflipped)
    monkeypatch.setattr(incremental, "CHECKED_SPLITS", {})  # a split checked by an earlier test would be reused
    with pytest.raises(ValueError, match="differs from its full forward"):
        incremental.split_first_conv(module, _init(module))
    assert incremental.CHECKED_SPLITS == {}  # a failed check is not cached


def test_the_check_runs_once_per_weights(monkeypatch):
    calls = []
    checked = incremental._checked_split
    monkeypatch.setattr(incremental, "_checked_split", lambda *args: calls.append(args) or checked(*args))
    monkeypatch.setattr(incremental, "CHECKED_SPLITS", {})
    module = get_model("lenet")
    variables = _init(module)
    first = incremental.split_first_conv(module, variables)
    # Equal weights in new arrays: the cached split.
    assert incremental.split_first_conv(module, jax.tree.map(jnp.array, variables)) is first
    assert len(calls) == 1
    other = module.init(jax.random.key(1), jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))
    incremental.split_first_conv(module, other)
    assert len(calls) == 2


def test_config_names_the_choice_and_keeps_the_search_key():
    with pytest.raises(ValueError, match="forward='sparse' is unknown"):
        AttackConfig(forward="sparse")
    assert AttackConfig(forward="incremental").search_key() == AttackConfig().search_key()


def test_a_victim_without_a_module_is_refused():
    module = get_model("lenet")
    variables = _init(module)
    wrapped = Victim(name="wrapped", apply_fn=lambda v, x: module.apply(v, x), variables=variables)
    images = np.full((1, *IMAGE_SHAPE), 128, np.float32)
    with pytest.raises(ValueError, match="needs the victim's Flax module"):
        attack(wrapped, images, np.zeros(1, np.int64),
               AttackConfig(forward="incremental", population_size=8, max_generations=1, slots=1))


@pytest.mark.allow_rank_promotion
def test_the_attack_finds_what_the_full_forward_finds(cifar_test, pixels=1):
    """Same seed, same images: the same successes, queries and pixels; fitness to rounding."""
    from deattack.victims.loading import load_victim

    victim = load_victim("lenet")
    images, labels = cifar_test[0][:6], cifar_test[1][:6]
    config = AttackConfig(pixels=pixels, population_size=40, max_generations=8, slots=3, seed=1)
    full = attack(victim, images, labels, config).records
    fast = attack(victim, images, labels, dataclasses.replace(config, forward="incremental")).records
    assert any(r["success"] for r in full) and not all(r["success"] for r in full)
    for a, b in zip(full, fast):
        assert (a["image_index"], a["success"], a["queries"], a["status"]) == \
            (b["image_index"], b["success"], b["queries"], b["status"])
        np.testing.assert_allclose(np.asarray(a["pixels"], float), np.asarray(b["pixels"], float), atol=1e-3)
        np.testing.assert_allclose(a["best_fitness"], b["best_fitness"], rtol=1e-4, atol=1e-6)
