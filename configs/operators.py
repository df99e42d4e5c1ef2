"""Which DE operator is best for few-pixel attacks, at equal queries (issue 7).

Every variant gets the paper's budget, 400 x (100 + 1) = 40,400 queries a problem
(population 400, at most 100 generations; the exhaustive corner scan stops at 8,192),
F = 0.5 and CR = 0.9 where they apply, the paper's initial population and bounds.

Variants (names as the report prints them, mutation/crossover/adaptation):
- textbook: every mutation of deattack.de (rand/1, rand/2, best/1, best/2,
  current-to-best/1, current-to-pbest/1 with JADE's archive) x crossover none, bin, exp;
- adaptive, on their natural mutation: jDE (rand/1/bin), JADE and SHADE
  (current-to-pbest/1/bin);
- designed for pixels (deattack/de/mutation.py): rand/1-snap (colours snap to the cube's
  corners) and rand/1-snap-local (plus neighbour-pixel moves around p-best members),
  the latter and rand/1 also with the initial colours at the corners (init "corners");
- baselines: random search (uniform resampling of the box, greedy selection), CMA-ES
  (deattack/es/cma_es.py: lambda = 400 samples a generation, so the same 40,400 queries,
  from the box's centre with sigma0 = 0.3 of its width) and, for 1 pixel, the exhaustive
  scan of all 1,024 locations x 8 corner colours.

Variants (the names the study ran them under, in STUDY_NAMES, still work):
  lenet-all-operators (screen): every variant above, lenet, the first 274 test images
      (exactly 200 correctly classified), 1 and 3 px untargeted, seed 0: 55 cells.
  lenet-six-operators (followup-lenet): FOLLOWUP's six, seeds 0-2, lenet, 1/3/5 px
      untargeted on those 200 images: 42 cells (seed 0 at 1 and 3 px are
      lenet-all-operators' cells: report both stores).
  lenet-six-operators-targeted (followup-lenet-targeted): the same six, 1 px targeted
      (one random target an image) on the first 71 test images (50 correct): 18 cells.
  lenet-six-operators-targeted-34-images (followup-lenet-targeted-34): FOLLOWUP_34's
      six, targeted: what docs/results/operators_screen_25 ran.
  lenet-six-operators-but-three (followup-lenet-rest), lenet-six-operators-targeted-
      but-three (followup-lenet-targeted-rest): those less HEAD_TO_HEAD's three
      operators, whose cells (same ids) are in the stores below.
  resnet20-six-operators (followup-resnet20): the six on resnet20, 1 px untargeted, the
      first 109 test images (exactly 100 correct for the shipped checkpoint): 18 cells.
  resnet20-corner-scan (scan-resnet20): the exhaustive corner-colour scan on those
      images: 1 cell, 3 units.
  lenet-default-rand1-best1exp (head-to-head-lenet): HEAD_TO_HEAD's three (the default
      rand/1-snap-local from corner colours, rand/1, best/1/exp), 1/3/5 px untargeted,
      the 200 images, seeds 0-2: 27 cells.
  lenet-best1exp (head-to-head-lenet-runner-up): best/1/exp's 9 cells of those.
  lenet-default-rand1-best1exp-targeted (head-to-head-lenet-targeted): the three, 1/3/5
      px targeted on the 50 images, seeds 0-2: 27 cells.
  resnet20-default-rand1 (head-to-head-resnet20): the default and rand/1 on resnet20,
      1 px untargeted, resnet20-six-operators' images, seed 0: 2 cells.
  lenet-eight-searches-34-images (pilot): rand/1, the pixel variants, SHADE, CMA-ES,
      random search and the corner scan, lenet, 1 px untargeted, the first 34 test
      images (25 correct), seed 0: 8 cells (~15 minutes on 2 CPU cores).
  lenet-resnet20-six-operators-700-images (full): the six on both victims, the first 700
      test images, both modes, 1/3/5 px, seeds 0-2: 216 cells, for a GPU.
  smoke: lenet-all-operators' 55 cells on the first 2 test images, population 12, 3
      generations: a plumbing check (--shard 0/7 runs 7).

  deattack sweep configs/operators.py:lenet-all-operators --shard 0/2 \
      --store runs/sweep/operators-screen-0.sqlite  # and 1/2
  deattack merge runs/sweep/operators-screen.sqlite runs/sweep/operators-screen-*-of-*.sqlite
  deattack report runs/sweep/operators-screen.sqlite --operators --out docs/results
  # FOLLOWUP below is the screen report's ranking; then
  deattack sweep configs/operators.py:lenet-six-operators            # etc.
  # or only what no other store holds (lenet-six-operators-but-three); the whole store is
  # then assembled without rerunning a cell:
  deattack sweep configs/operators.py:lenet-six-operators --reuse STORE_OF_REST --reuse STORE_OF_HEAD_TO_HEAD
  deattack report runs/sweep/operators-screen.sqlite runs/sweep/operators-followup-*.sqlite \
      --operators --out docs/results

Budget (2 CPU cores, lenet ~8,000 images/s): a failed problem costs 40,400 queries
(~5 s), a success on lenet a median of ~400-2,000; the screen is at most
55 x 200 x 40,400 = 444 M queries (~15 h), about 130 M (~4.5 h) at rand/1's mean cost
in docs/results/engine (15,400 queries a problem at 1 px, 8,400 at 3 px).
Every variant scores candidates with forward="incremental" (deattack/attack/incremental.py:
only the changed pixels' first-layer patches are recomputed; ~5x on lenet on CPU,
docs/bench.md runs 10-11; the corner scan always runs the full forward). It is a layout
choice that leaves the cell ids alone: the 34-image stores of docs/results/operators.md
were written with the full forward (`--set attack.forward=full` reproduces that).
"""

import dataclasses

from deattack.attack import AttackConfig
from deattack.attack.searches import operator_name
from deattack.sweep.grid import ImageSet, SweepConfig

TEXTBOOK_MUTATIONS = ("rand/1", "rand/2", "best/1", "best/2", "current-to-best/1", "current-to-pbest/1")
CROSSOVERS = ("none", "bin", "exp")


def _variant(mutation: str, crossover: str = "none", adaptation: str = "constant") -> tuple:
    return (("mutation", mutation), ("crossover", crossover), ("adaptation", adaptation))


def _name(variant: tuple) -> str:
    """The report's label of a variant (deattack.attack.searches.operator_name)."""
    return operator_name(dict(variant))


SCREEN_VARIANTS = (
    *(_variant(m, c) for m in TEXTBOOK_MUTATIONS for c in CROSSOVERS),
    _variant("rand/1", "bin", "jde"),
    _variant("current-to-pbest/1", "bin", "jade"),
    _variant("current-to-pbest/1", "bin", "shade"),
    _variant("rand/1-snap"),
    _variant("rand/1-snap-local"),
    # The same structure in the encoding: colours start at the cube's corners (rand/1
    # with it separates the initialisation's share from the operator's).
    _variant("rand/1-snap-local") + (("init", "corners"),),
    _variant("rand/1") + (("init", "corners"),),
    _variant("random"),
    (("search", "cma-es"),),
    (("search", "exhaustive"), ("pixels", 1)),
)
VARIANTS = {_name(v): v for v in SCREEN_VARIANTS}
BASELINE = "rand/1/none/constant"  # Su et al. 2019, the reference of the paired tests

# Six operators: rand/1 and the five the screen's ranking put first (the ranking and why
# best/1/exp went to HEAD_TO_HEAD instead: docs/results/operators_note.md).
FOLLOWUP = (
    BASELINE,
    "rand/1-snap-local/none/constant+init-corners",
    "current-to-pbest/1/bin/jade",
    "rand/1-snap-local/none/constant",
    "current-to-pbest/1/exp/constant",
    "rand/1/exp/constant",
)

# rand/1 and the five the 25-image screen (first 34 test images) put first, which ran its
# 1/3/5 px targeted follow-up (docs/results/operators_screen_25_note.md).
FOLLOWUP_34 = (
    BASELINE,
    "rand/1-snap-local/none/constant+init-corners",
    "best/1/exp/constant",
    "best/2/exp/constant",
    "current-to-best/1/exp/constant",
    "current-to-best/1/bin/constant",
)

# deattack.attack.default_config's operator (untargeted, and targeted below 5 pixels).
DEFAULT = "rand/1-snap-local/none/constant+init-corners"
# The default's closest rival in the 25-image screen (docs/results/operators_screen_25_note.md).
RUNNER_UP = "best/1/exp/constant"
HEAD_TO_HEAD = (BASELINE, DEFAULT, RUNNER_UP)

PILOT = (
    BASELINE,
    "rand/1-snap/none/constant",
    "rand/1-snap-local/none/constant",
    "rand/1-snap-local/none/constant+init-corners",
    "current-to-pbest/1/bin/shade",
    "cma-es",
    "random/none/constant",
    "exhaustive-corners",
)

ATTACK = AttackConfig(population_size=400, max_generations=100, differential_weight=0.5,
                      crossover_rate=0.9, slots=16, targets="random", forward="incremental")


# The names these variants had while the study ran (its stores record them in their
# commands): each still gives the same sweep.
STUDY_NAMES = {
    "screen": "lenet-all-operators",
    "followup-lenet": "lenet-six-operators",
    "followup-lenet-targeted": "lenet-six-operators-targeted",
    "followup-lenet-targeted-34": "lenet-six-operators-targeted-34-images",
    "followup-lenet-rest": "lenet-six-operators-but-three",
    "followup-lenet-targeted-rest": "lenet-six-operators-targeted-but-three",
    "followup-resnet20": "resnet20-six-operators",
    "scan-resnet20": "resnet20-corner-scan",
    "full": "lenet-resnet20-six-operators-700-images",
    "head-to-head-lenet": "lenet-default-rand1-best1exp",
    "head-to-head-lenet-runner-up": "lenet-best1exp",
    "head-to-head-lenet-targeted": "lenet-default-rand1-best1exp-targeted",
    "head-to-head-resnet20": "resnet20-default-rand1",
    "pilot": "lenet-eight-searches-34-images",
}


def get_config(variant: str = "lenet-all-operators") -> SweepConfig:
    variant = STUDY_NAMES.get(variant or "lenet-all-operators", variant or "lenet-all-operators")
    screen = SweepConfig(
        name="operators-screen", victims=("lenet",), pixels=(1, 3), modes=("untargeted",), seeds=(0,),
        images=ImageSet(split="test", start=0, count=274, correct_only=True),
        attack=ATTACK, chunk_images=40, variants=SCREEN_VARIANTS)
    unknown = [name for name in FOLLOWUP + FOLLOWUP_34 if name not in VARIANTS]
    if unknown:
        raise ValueError(f"FOLLOWUP names unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    followup = dataclasses.replace(screen, seeds=(0, 1, 2), variants=tuple(VARIANTS[n] for n in FOLLOWUP))
    # Seed 0 at 1 and 3 px are the screen's cells (same victim, images, settings: same
    # cell ids), so the lenet follow-up runs only seeds 1, 2 there and all three at 5 px;
    # its report reads both stores.
    reusing = tuple(VARIANTS[n] + extra for n in FOLLOWUP
                    for extra in ((("seed", 1),), (("seed", 2),), (("pixels", 5), ("seed", 0))))
    # The targeted follow-ups: one random target an image on the first 71 test images
    # (50 correctly classified), 1 px unless told; resnet20: its first 109 (100 correct).
    targeted = dataclasses.replace(
        followup, name="operators-followup-lenet-targeted", pixels=(1,), modes=("targeted",),
        images=ImageSet(split="test", start=0, count=71, correct_only=True), chunk_images=24)
    resnet20 = dataclasses.replace(followup, name="operators-followup-resnet20", victims=("resnet20",), pixels=(1,),
                                   images=ImageSet(split="test", start=0, count=109, correct_only=True))
    configs = {
        "lenet-all-operators": screen,
        "lenet-six-operators": dataclasses.replace(followup, name="operators-followup-lenet", pixels=(1, 3, 5),
                                              variants=reusing),
        "lenet-six-operators-targeted": targeted,
        # What the 25-image screen's targeted stores ran (with --set images.count=34 --set
        # seeds=0 --set pixels=P; the same sweep name, so those stores resume).
        "lenet-six-operators-targeted-34-images": dataclasses.replace(
            targeted, variants=tuple(VARIANTS[n] for n in FOLLOWUP_34)),
        # The follow-up less the head-to-head's operators, whose cells (the same ids) are in
        # the head-to-head stores already: what is left to run.
        "lenet-six-operators-but-three": dataclasses.replace(
            followup, name="operators-followup-lenet-rest", pixels=(1, 3, 5),
            variants=tuple(v for v in reusing if _name(v) not in HEAD_TO_HEAD)),
        "lenet-six-operators-targeted-but-three": dataclasses.replace(
            targeted, name="operators-followup-lenet-targeted-rest",
            variants=tuple(VARIANTS[n] for n in FOLLOWUP if n not in HEAD_TO_HEAD)),
        "resnet20-six-operators": resnet20,
        # Which of those images any corner-colour pixel fools at all (the 1-pixel ceiling
        # the lenet screen measured, here for resnet20): the 8,192-query scan, one cell.
        "resnet20-corner-scan": dataclasses.replace(resnet20, name="operators-scan-resnet20", seeds=(0,),
                                             variants=(VARIANTS["exhaustive-corners"],)),
        # The full grid: the shipped undefended victims, the first 700 test images
        # (~510 / ~620 correctly classified by lenet / resnet20), both modes, 1/3/5 px, the
        # follow-up's operators and seeds: 216 cells, ~3e9 queries at most (about 3 h of
        # one H200 at bench run 9's 255,000 resnet20 queries/s). For a GPU: --set
        # attack.slots=256 --shard i/N over leases or machines, one store each, then
        # `deattack merge ALL.sqlite STORES...` and `deattack report ALL.sqlite --operators`.
        "lenet-resnet20-six-operators-700-images": dataclasses.replace(
            followup, name="operators-full", victims=("lenet", "resnet20"), pixels=(1, 3, 5),
            modes=("untargeted", "targeted"), images=ImageSet(split="test", start=0, count=700, correct_only=True),
            chunk_images=128),
        "lenet-default-rand1-best1exp": dataclasses.replace(
            followup, name="operators-head-to-head-lenet", pixels=(1, 3, 5),
            variants=tuple(VARIANTS[n] for n in HEAD_TO_HEAD)),
        "lenet-best1exp": dataclasses.replace(
            followup, name="operators-head-to-head-lenet-runner-up", pixels=(1, 3, 5),
            variants=(VARIANTS[RUNNER_UP],)),
        "lenet-default-rand1-best1exp-targeted": dataclasses.replace(
            targeted, name="operators-head-to-head-lenet-targeted", pixels=(1, 3, 5),
            variants=tuple(VARIANTS[n] for n in HEAD_TO_HEAD)),
        "resnet20-default-rand1": dataclasses.replace(
            resnet20, name="operators-head-to-head-resnet20", seeds=(0,),
            variants=tuple(VARIANTS[n] for n in (BASELINE, DEFAULT))),
        "lenet-eight-searches-34-images": dataclasses.replace(
            screen, name="operators-pilot", pixels=(1,),
            images=ImageSet(split="test", start=0, count=34, correct_only=True),
            chunk_images=25, variants=tuple(VARIANTS[n] for n in PILOT)),
        "smoke": dataclasses.replace(
            screen, name="operators-smoke", images=ImageSet(split="test", start=0, count=2, correct_only=True),
            chunk_images=2, attack=dataclasses.replace(ATTACK, population_size=12, max_generations=3, slots=4)),
    }
    if variant not in configs:
        raise ValueError(f"operators has no variant {variant!r}; known: {', '.join(configs)} "
                         f"(and the study's names {', '.join(STUDY_NAMES)})")
    return configs[variant]
