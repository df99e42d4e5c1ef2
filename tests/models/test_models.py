"""Victim zoo: registry, parameter counts against the papers, input convention."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.models import MODELS, get_model

# Parameter counts: LeNet-5 of the one-pixel-attack-keras repo (62,006), ResNet-20
# of He et al. 2016 ("0.27M"), NiN ~0.97M, All-CNN-C ~1.37M, CIFAR VGG-16-BN ~14.7M.
EXPECTED_PARAMS = {
    "lenet": (62_006, 62_006),
    "resnet20": (265_000, 275_000),
    "nin": (950_000, 990_000),
    "allconv": (1_350_000, 1_390_000),
    "vgg16": (14_700_000, 15_000_000),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_param_counts_and_output_shape(name):
    model = get_model(name)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(variables["params"]))
    low, high = EXPECTED_PARAMS[name]
    assert low <= count <= high
    logits = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((4, 32, 32, 3))), variables)
    assert logits.shape == (4, 10)


@pytest.mark.parametrize("name", ["lenet", "resnet20"])
def test_uint8_and_float_inputs_agree(name):
    model = get_model(name)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    np.testing.assert_allclose(model.apply(variables, images), model.apply(variables, images.astype(np.float32)),
                               rtol=0, atol=0)


def test_unknown_model_lists_known():
    with pytest.raises(ValueError, match="resnet20"):
        get_model("resnet1000")
    assert {"lenet", "resnet20", "nin", "allconv", "vgg16"} <= set(MODELS)
