"""Defenses against few-pixel attacks, each defended victim beside its undefended twin:
clean accuracy, 1/3/5-pixel untargeted and targeted (one random target an image)
success and median queries, under the default attack (the paper's DE/rand/1, population
400, 100 generations) and under an attack that knows the defense (wrappers: attacked end
to end, and repair also with its colours kept under the repair's threshold, the "aware"
sweep; trained defenses: margin fitness, 200 generations, up to 10 pixels).

  deattack defenses configs/defenses.py:smoke  --out runs/defenses/smoke     # ~2-4 min on 2 CPU cores
  deattack defenses configs/defenses.py:lenet  --out runs/defenses/lenet --report docs/results/defenses_lenet.md
  deattack defenses configs/defenses.py        --out runs/defenses/resnet20 --report docs/results/defenses.md

Variants: "" (resnet20: median3, repair, resnet20_deadpixel, resnet20_advde vs resnet20;
100 test images), "resnet20_wrappers" (the wrappers only: no trained checkpoint needed),
"resnet20_trained" (the two trained defenses only; adaptive attack at 3 and 10 pixels),
"lenet" (the same four on lenet), "smoke" (lenet wrappers, 4 images, population 20,
3 generations, 1 and 3 pixels). Trained defenses come from configs/train_defenses.py.
Runtime (estimates from the attack's queries/s, docs/results/bench_attack_cpu.jsonl; a
failed problem costs 40,400 queries by default, 80,800 adaptive): smoke ~1 min of CPU; the
lenet variant ~5-6 h on 2 free CPU cores (~7,000 queries/s; --set images.count=30 for
~1.5 h); the resnet20 one ~50 h on 2 CPU cores (~850 queries/s), so GPU work (~1 h).
Rerunning the same command resumes; `--report-only` rewrites the report; `--shard i/n`
runs only unit u with u mod n == i of each sweep (resnet20_trained's adaptive sweep has one
unit a cell, 12 cells: `--shard 4/12` is the twin's 3-pixel untargeted cell); `--only aware
--shard 2/6` runs the wrappers' repair-aware 3-pixel untargeted cell alone.
"""

import dataclasses

from deattack.attack import paper_config
from deattack.defenses.evaluate import DefenseEvalConfig
from deattack.sweep.grid import ImageSet


def _pairs(model: str, trained: bool = True) -> tuple[tuple[str, str], ...]:
    pairs = [(f"median3+{model}", model), (f"repair+{model}", model)]
    if trained:
        pairs += [(f"{model}_deadpixel", model), (f"{model}_advde", model)]
    return tuple(pairs)


def get_config(variant: str = "") -> DefenseEvalConfig:
    config = DefenseEvalConfig(
        name="resnet20",
        pairs=_pairs("resnet20"),
        pixels=(1, 3, 5),
        modes=("untargeted", "targeted"),
        images=ImageSet(split="test", start=0, count=100, correct_only=True),
        attack=paper_config(targets="random", slots=64),
        adaptive_attack=paper_config(targets="random", slots=64, fitness="margin", max_generations=200),
        adaptive_pixels=(1, 3, 5, 10),
        clean_images=10000,
    )
    if variant in ("", "resnet20"):
        return config
    if variant == "resnet20_trained":
        # The trained defenses alone (the wrappers are resnet20_wrappers): what one GPU
        # lease ran; the adaptive attack at 3 and 10 pixels keeps the compile count down.
        return dataclasses.replace(config, name="resnet20_trained", pairs=_pairs("resnet20")[2:],
                                   adaptive_pixels=(3, 10))
    if variant == "resnet20_wrappers":
        return dataclasses.replace(config, name="resnet20_wrappers", pairs=_pairs("resnet20", trained=False))
    if variant == "lenet":
        return dataclasses.replace(config, name="lenet", pairs=_pairs("lenet"))
    if variant == "smoke":
        small = dict(population_size=20, max_generations=3, slots=8)
        return dataclasses.replace(
            config, name="smoke", pairs=_pairs("lenet", trained=False), pixels=(1, 3),
            images=ImageSet(split="test", start=0, count=4, correct_only=True), chunk_images=4,
            attack=dataclasses.replace(config.attack, **small),
            adaptive_attack=dataclasses.replace(config.adaptive_attack, **small), adaptive_pixels=(1, 3),
            clean_images=500)
    raise ValueError(f"defenses has no variant {variant!r}; known: resnet20, resnet20_wrappers, "
                     "resnet20_trained, lenet, smoke")
