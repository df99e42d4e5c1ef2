"""A tiny sweep for CLI smoke tests and CI: lenet, 4 test images, 1 pixel, untargeted
and targeted (one random target an image), population 10, 2 generations.

  deattack sweep configs/sweep_smoke.py --store /tmp/smoke.sqlite
  deattack report /tmp/smoke.sqlite --out /tmp/smoke-report

Runtime: ~30-60 s on 2 CPU cores, nearly all of it jit compilation. Expected: 2 cells,
rows = correctly classified images (<= 4) + as many targeted rows; success rates are
noise at this budget.
"""

from deattack.attack import AttackConfig
from deattack.sweep.grid import ImageSet, SweepConfig


def get_config(variant: str = "") -> SweepConfig:
    if variant:
        raise ValueError(f"sweep_smoke has no variant {variant!r}")
    return SweepConfig(
        name="smoke",
        victims=("lenet",),
        pixels=(1,),
        modes=("untargeted", "targeted"),
        images=ImageSet(split="test", start=0, count=4, correct_only=True),
        attack=AttackConfig(population_size=10, max_generations=2, targets="random", slots=4),
        chunk_images=2,
    )
