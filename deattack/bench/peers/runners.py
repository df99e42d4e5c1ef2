"""torchattacks `OnePixel` and ART `PixelAttack` on the torch port of the victim.

Each peer runs as its users run it (its own DE, its own batching), on the same images,
with the population and generation budget of the deattack config. Queries are
counted at the torch forward (`CountingModel`: images evaluated, including the
peers' own success checks); success is judged by the JAX victim on the image the
peer returns, for every attack alike.

Parameter mapping, read from the installed sources (torchattacks 3.5.1, ART 1.20.1):

torchattacks.OnePixel(model, pixels=K, steps=G, popsize=P, inf_batch=B)
- its DE is a copy of scipy's with a vectorised objective; population is
  popmul * D members where popmul = max(1, int(popsize / D)) and D = 5K: popsize=P
  gives exactly P when D divides P (400 for 1 pixel).
- fixed inside: strategy "best1bin", mutation (0.5, 1) dithered per generation,
  recombination=1 (no crossover), init "random" (uniform), atol=-1 (no convergence
  stop), polish=False. Not the paper's DE/rand/1 with F=0.5: OnePixel exposes none
  of these, so it runs as shipped.
- early stop: a callback after each generation (not after the initial population)
  re-evaluates the best member (one more query) and stops when it succeeds.
  Budget: P * (G + 1) + G queries.
- inputs NCHW in [0, 1]; (x, y) index (row, column); colours continuous in [0, 1]
  (not rounded to 8 bits). CountingModel scales by 255 for the [0, 255] port.
- randomness: numpy's global RandomState (seeded per image here).

art.attacks.evasion.PixelAttack(classifier, th=K, es=1, max_iter=G, targeted=...)
- th is the number of pixels; th=None would binary-search it (up to 127 attacks an
  image), so th=K. es=1 picks DE (es=0 is CMA-ES).
- its DE (a scipy copy) has popsize = max(1, 400 // D) hard-coded: 400 members for
  1 pixel whatever the config says (`equal_budget` reports whether P matched).
  Fixed: "best1bin", mutation (0.5, 1) dithered, recombination=1, init
  "latinhypercube", atol=-1, polish=False.
- fitness is the classifier's output at the true (or 1 - at the target) class:
  with a logits model that is a logit, so CountingModel appends a softmax for ART
  (the paper's probability fitness; argmax unchanged).
- early stop: a callback after each generation checks the best member (one query),
  and a final check of the result (one more). Budget: P * (G + 1) + G + 1.
- predict runs in batches of 128 (PyTorchClassifier.predict's default).
- inputs NCHW in [0, 255] with clip_values=(0, 255); colours truncated to integers.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from deattack.bench.peers.result import AttackRun
from deattack.bench.peers.torch_port import torch_logits
from deattack.bench.timing import images_per_s
from deattack.victims.victim import predict


class CountingModel(nn.Module):
    """The ported victim behind a counter of evaluated images.

    Args:
      module: the port ([0, 255] NCHW -> logits).
      input_scale: multiplies the input first (255 for peers that work in [0, 1]).
      softmax: return probabilities instead of logits.
    """

    def __init__(self, module: nn.Module, input_scale: float = 1.0, softmax: bool = False):
        super().__init__()
        self.module, self.input_scale, self.softmax = module, input_scale, softmax
        self.images = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.images += int(images.shape[0])
        logits = self.module(images * self.input_scale if self.input_scale != 1.0 else images)
        return torch.softmax(logits, dim=-1) if self.softmax else logits


def _judge(victim, adversarial_nhwc: list[np.ndarray], labels: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    predicted = np.argmax(predict(victim, np.stack(adversarial_nhwc), batch_size=min(len(labels), 64)), -1)
    return predicted != labels if targets is None else predicted == targets


def _nchw(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(np.asarray(images_nhwc, np.float32), (0, 3, 1, 2)))


def torchattacks_attack(victim, module: nn.Module, images: np.ndarray, labels: np.ndarray, *, pixels: int,
                        population_size: int, max_generations: int, targets: np.ndarray | None = None,
                        inference_batch: int = 128, seed: int = 0) -> AttackRun:
    """torchattacks.OnePixel image by image on the port (mapping: module docstring)."""
    import torchattacks

    model = CountingModel(module, input_scale=255.0).eval()
    attack = torchattacks.OnePixel(model, pixels=pixels, steps=max_generations, popsize=population_size,
                                   inf_batch=inference_batch)
    if targets is not None:
        attack.set_mode_targeted_by_label(quiet=True)  # then the labels passed are the targets
    images01 = torch.from_numpy(_nchw(images) / 255.0)
    wanted = torch.from_numpy(np.asarray(labels if targets is None else targets, np.int64))
    queries, walls, adversarial = [], [], []
    for row in range(len(images)):
        np.random.seed(seed + row)  # OnePixel's DE draws from numpy's global RandomState
        before, started = model.images, time.perf_counter()
        result = attack(images01[row:row + 1], wanted[row:row + 1])
        walls.append(time.perf_counter() - started)
        queries.append(model.images - before)
        adversarial.append(result[0].permute(1, 2, 0).cpu().numpy() * 255.0)
    members = max(1, int(population_size / (5 * pixels))) * 5 * pixels
    return AttackRun("torchattacks", _judge(victim, adversarial, np.asarray(labels), targets),
                     np.asarray(queries, np.int64), np.asarray(walls), settings={
                         "population_size": members, "max_generations": max_generations,
                         "equal_budget": members == population_size, "strategy": "best1bin",
                         "F": "dither(0.5, 1)", "recombination": 1.0, "inference_batch": inference_batch})


def art_attack(victim, module: nn.Module, images: np.ndarray, labels: np.ndarray, *, pixels: int,
               population_size: int, max_generations: int, targets: np.ndarray | None = None,
               seed: int = 0) -> AttackRun:
    """ART PixelAttack (DE) image by image on the port (mapping: module docstring)."""
    from art.attacks.evasion import PixelAttack
    from art.estimators.classification import PyTorchClassifier

    model = CountingModel(module, softmax=True).eval()
    classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(3, 32, 32),
                                   nb_classes=10, clip_values=(0.0, 255.0), channels_first=True,
                                   device_type="cpu" if not torch.cuda.is_available() else "gpu")
    attack = PixelAttack(classifier, th=pixels, es=1, max_iter=max_generations, targeted=targets is not None,
                         verbose=False)
    images_nchw = _nchw(images)
    wanted = np.asarray(labels if targets is None else targets, np.int64)
    queries, walls, adversarial = [], [], []
    for row in range(len(images)):
        np.random.seed(seed + row)  # ART's DE copy draws from numpy's global RandomState
        before, started = model.images, time.perf_counter()
        result = attack.generate(images_nchw[row:row + 1], wanted[row:row + 1])
        walls.append(time.perf_counter() - started)
        queries.append(model.images - before)
        adversarial.append(np.transpose(result[0], (1, 2, 0)))
    members = max(1, 400 // (5 * pixels)) * 5 * pixels
    return AttackRun("art", _judge(victim, adversarial, np.asarray(labels), targets),
                     np.asarray(queries, np.int64), np.asarray(walls), settings={
                         "population_size": members, "max_generations": max_generations,
                         "equal_budget": members == population_size, "strategy": "best1bin",
                         "F": "dither(0.5, 1)", "recombination": 1.0, "inference_batch": 128})


def torch_forward_throughput(module: nn.Module, batch_sizes, seconds: float = 2.0) -> dict[int, float]:
    """Images/s of the port's forward (no_grad, eval) at each batch size: the peers' limit."""
    rng = np.random.default_rng(0)
    result = {}
    for size in batch_sizes:
        images = rng.integers(0, 256, (size, 32, 32, 3)).astype(np.float32)
        result[int(size)] = images_per_s(
            lambda: torch_logits(module, images, batch_size=size), size, seconds)
    return result
