"""Su, Vargas & Sakurai, "One pixel attack for fooling deep neural networks" (IEEE TEVC 2019).

DE/rand/1, F = 0.5, no crossover, population 400, at most 100 generations, pixels
encoded as (x, y, r, g, b), x, y ~ U(0, 32) and rgb ~ N(128, 127) at init.

Variants: "1px" (default), "3px", "5px", each optionally "-targeted" (all 9 targets
an image, as in the paper), and "smoke" (tiny, for tests).

  deattack attack --config configs/su2019.py:3px --model resnet20 --images 100

Budget: at most 400 x 101 = 40,400 queries a problem; on 2 CPU cores a resnet20
forward runs at ~600-1,000 images/s, so a failed image costs ~40-70 s.
"""

from deattack.attack import AttackConfig, paper_config


def get_config(variant: str = "") -> AttackConfig:
    if variant == "smoke":
        return paper_config(pixels=1, population_size=20, max_generations=3, slots=4)
    pixels_text, _, mode = (variant or "1px").partition("-")
    if not pixels_text.endswith("px") or not pixels_text[:-2].isdigit() or mode not in ("", "targeted"):
        raise ValueError(f"unknown su2019 variant {variant!r}; use e.g. 1px, 3px, 5px, 1px-targeted, smoke")
    return paper_config(pixels=int(pixels_text[:-2]), mode=mode or "untargeted")
