"""Defenses against few-pixel attacks.

Training-time: the "dead_pixels" and "de_attack" augmentations (deattack.augment),
selected with `deattack train --augment ...`; a model trained with them is a
checkpoint like any other (checkpoints/resnet20_deadpixel loads as "resnet20_deadpixel").
Inference-time: wrappers (deattack.defenses.wrappers) named in a victim spec,
"median3+resnet20". Evaluation: deattack.defenses.evaluate (`deattack defenses`).
"""

from deattack.defenses.wrappers import DEFENSES, Defense, load_defended, median3, outlier_repair, parse_defense, wrap

__all__ = ["DEFENSES", "Defense", "load_defended", "median3", "outlier_repair", "parse_defense", "wrap"]
