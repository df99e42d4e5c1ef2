"""Training recipes of defended victims: the undefended twin's recipe (configs/train.py,
same architecture, epochs and schedule) plus a training-time defense. The run's name is
MODEL_TAG (deattack.training.augment.defense_tag).

  deattack train --config configs/train_defenses.py:lenet_deadpixel     # ~40 min on 2 CPU cores
  deattack train --config configs/train_defenses.py:resnet20_deadpixel  # as resnet20: hours on CPU
  deattack train --config configs/train_defenses.py:lenet_advde         # ~3x lenet's step: ~2 h
  deattack train --config configs/train_defenses.py:resnet20_advde      # ~4x resnet20's step: GPU

Each resumes from runs/train/VARIANT and exports runs/train/VARIANT/checkpoint; add
`--out checkpoints/VARIANT` to make it loadable by that name (a checkpoint already there,
such as a shipped victim, is replaced only with --overwrite).

Variants: "resnet20_deadpixel", "lenet_deadpixel", "resnet20_advde", "lenet_advde". (For a
smoke run: `deattack train --model lenet --augment crop,flip,dead_pixels --epochs 1 --set
train_limit=256 --workdir /tmp/dp`.)
Dead pixels: 1-5 pixels an image (k drawn per batch), half the images, each pixel random,
black, white or saturated ("mixed"). DE adversarial training: a quarter of each batch
attacked with 1 pixel, population 20, 5 generations (at most 120 queries an image).
Override with e.g. --set augmentations=crop,flip,dead_pixels:k=1-3,p=1,values=saturated.
"""

import dataclasses
from pathlib import Path

from deattack import config_files

DEAD_PIXELS = "dead_pixels:k=1-5,p=0.5,values=mixed"
DE_ATTACK = "de_attack:fraction=0.25,generations=5,pixels=1,popsize=20"
DEFENSES = {"deadpixel": DEAD_PIXELS, "advde": DE_ATTACK}


def get_config(variant: str = "resnet20_deadpixel"):
    variant = variant or "resnet20_deadpixel"
    base, _, tag = variant.partition("_")
    if tag not in DEFENSES or base not in ("resnet20", "lenet"):
        raise ValueError(f"unknown defended recipe {variant!r}; known: resnet20_deadpixel, lenet_deadpixel, "
                         "resnet20_advde, lenet_advde")
    recipe = config_files.load(f"{Path(__file__).with_name('train.py')}:{base}")
    return dataclasses.replace(recipe, augmentations=(*recipe.augmentations, DEFENSES[tag]))
