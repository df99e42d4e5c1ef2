"""Subprocess body of test_devices: prints one JSON line of per-image records.

Usage: python devices_driver.py SLOTS DEVICES   (set XLA_FLAGS for virtual devices)
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack import AttackConfig, attack
from deattack.models import get_model
from deattack.victims.victim import Victim


def main():
    slots, devices = int(sys.argv[1]), int(sys.argv[2])
    model = get_model("lenet")
    variables = model.init(jax.random.key(7), jnp.zeros((1, 32, 32, 3)))
    victim = Victim(name="lenet-random", apply_fn=lambda v, x: model.apply(v, x), variables=variables)
    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3)).astype(np.uint8)
    labels = np.argmax(np.asarray(model.apply(variables, images.astype(np.float32))), -1)
    config = AttackConfig(pixels=2, population_size=24, max_generations=6, slots=slots, devices=devices,
                          chunk_generations=2, fitness="margin")
    results = attack(victim, images, labels, config)
    rows = sorted((r["image_index"], r["success"], r["queries"], r["generations"], r["pixels"],
                   r["best_fitness"]) for r in results.records)
    print(json.dumps({"devices": len(jax.local_devices()), "rows": rows}))


if __name__ == "__main__":
    main()
