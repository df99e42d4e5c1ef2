"""The one-pixel-attack-keras (Hyperparticle) README table: model, parameters, test
accuracy, pixels, untargeted and targeted attack success.

That repository attacks 100 (correctly classified) test images with population 400 and
75 DE iterations at 1, 3 and 5 pixels; targeted means one target class an image
(here a random other class from a per-image stream, deattack.attack.targets.RANDOM_TARGET_RULE).
Its DE is scipy's (best1bin, recombination 1); we keep the paper's DE/rand/1 with no
crossover, F = 0.5 (override with --set mutations=best/1 --set crossovers=bin).

  deattack sweep configs/keras_table.py --shard 0/4 --store runs/keras-0.sqlite   # x4
  deattack merge runs/keras.sqlite runs/keras-*.sqlite
  deattack report runs/keras.sqlite --out reports/keras

Variants: "" (the table), "smoke" (4 images, population 20, 3 generations).
Budget: 2 victims x 3 pixel counts x 2 modes = 12 cells x <= 100 problems x <= 30,400
queries; on one GPU minutes, on 2 CPU cores many hours (resnet20 ~1,000 images/s).
Expected shape (as in the README's table): success rises with pixels, targeted below
untargeted, and differs across victims.
"""

from deattack.attack import AttackConfig
from deattack.sweep.grid import ImageSet, SweepConfig


def get_config(variant: str = "") -> SweepConfig:
    config = SweepConfig(
        name="keras_table",
        victims=("lenet", "resnet20"),
        pixels=(1, 3, 5),
        modes=("untargeted", "targeted"),
        mutations=("rand/1",),
        crossovers=("none",),
        adaptations=("constant",),
        seeds=(0,),
        images=ImageSet(split="test", start=0, count=100, correct_only=True),
        attack=AttackConfig(population_size=400, max_generations=75, targets="random",
                            differential_weight=0.5, slots=64),
        chunk_images=25,
    )
    if variant == "smoke":
        import dataclasses

        return dataclasses.replace(
            config, images=ImageSet(count=4), chunk_images=2,
            attack=dataclasses.replace(config.attack, population_size=20, max_generations=3, slots=4))
    if variant:
        raise ValueError(f"keras_table has no variant {variant!r}; known: smoke")
    return config
