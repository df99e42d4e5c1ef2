"""The GPU headline (issue 30): a 1-pixel untargeted attack on all 10,000 CIFAR-10 test
images against resnet20 at the paper's budget (population 400, at most 100 generations),
with the paper's DE/rand/1 and with the default operator, as one resumable sweep.

  deattack sweep configs/headline.py --store runs/headline.sqlite            # a GPU run
  deattack sweep configs/headline.py:dry --store runs/headline-dry.sqlite    # CPU smoke: 2 images, 2 generations

Units are 256 images (one store commit each), so a GPU lease that ends mid-sweep keeps
every finished unit and the next lease resumes the store. Variants: "" (all 10,000
images), "dry" (the campaign's dry run), "IMAGES" (an integer: the first IMAGES).
"""

import dataclasses

from deattack.attack import paper_config
from deattack.sweep.grid import ImageSet, SweepConfig

# The default operator of deattack.default_config at 1 pixel, untargeted.
DEFAULT_OPERATOR = (("mutation", "rand/1-snap-local"), ("init", "corners"))
PAPER_OPERATOR = (("mutation", "rand/1"),)


def get_config(variant: str = "") -> SweepConfig:
    config = SweepConfig(
        name="headline-resnet20-1px",
        victims=("resnet20",),
        pixels=(1,),
        modes=("untargeted",),
        images=ImageSet(split="test", start=0, count=10_000, correct_only=True),
        attack=paper_config(slots=1024, chunk_generations=20),
        chunk_images=256,
        variants=(PAPER_OPERATOR, DEFAULT_OPERATOR),
    )
    if variant == "dry":
        return dataclasses.replace(
            config, images=ImageSet(count=2), chunk_images=2,
            attack=dataclasses.replace(config.attack, population_size=8, max_generations=2, slots=2))
    if variant.isdigit():
        return dataclasses.replace(config, images=dataclasses.replace(config.images, count=int(variant)))
    if variant:
        raise ValueError(f"headline has no variant {variant!r}; known: dry, or a number of images")
    return config
