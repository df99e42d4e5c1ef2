"""Su, Vargas & Sakurai, "One pixel attack for fooling deep neural networks" (IEEE TEVC
2019), Tables 2-4 as a sweep: DE/rand/1, F = 0.5, no crossover, population 400, at most
100 generations; 1, 3 and 5 pixels; untargeted and targeted, each image attacked
towards all 9 other classes (targets "all"), which also gives the paper's
"number of target classes an image can be pushed to".

  deattack sweep configs/su2019_sweep.py --shard 0/8 --store runs/su2019-0.sqlite   # x8
  deattack merge runs/su2019.sqlite runs/su2019-*.sqlite
  deattack report runs/su2019.sqlite --out reports/su2019

Variants: "" (resnet20 and lenet, test images 0-499), "smoke" (lenet, 3 images,
population 20, 3 generations). Override with e.g. --set victims=resnet20 --set images.count=100.
Budget: a targeted cell is 9 problems an image x <= 40,400 queries; GPU work.
Expected (the paper, Kaggle CIFAR-10 nets): 1 pixel untargeted ~20-70% depending on the
network, confidence ~60-80%, targeted lower; success rises with pixels.
"""

import dataclasses

from deattack.attack import paper_config
from deattack.sweep.grid import ImageSet, SweepConfig


def get_config(variant: str = "") -> SweepConfig:
    config = SweepConfig(
        name="su2019",
        victims=("resnet20", "lenet"),
        pixels=(1, 3, 5),
        modes=("untargeted", "targeted"),
        mutations=("rand/1",),
        crossovers=("none",),
        adaptations=("constant",),
        seeds=(0,),
        images=ImageSet(split="test", start=0, count=500, correct_only=True),
        attack=paper_config(targets="all", slots=64),
        chunk_images=16,
    )
    if variant == "smoke":
        return dataclasses.replace(
            config, victims=("lenet",), images=ImageSet(count=3), chunk_images=3,
            attack=dataclasses.replace(config.attack, population_size=20, max_generations=3, slots=8))
    if variant:
        raise ValueError(f"su2019_sweep has no variant {variant!r}; known: smoke")
    return config
