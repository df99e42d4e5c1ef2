"""`attack(victim, images, labels, config) -> AttackResults`: the whole attack in one call."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deattack.attack import adversarial
from deattack.attack.adversarial import AdversarialImages
from deattack.attack.config import AttackConfig, default_config
from deattack.attack.exhaustive import ExhaustiveRunner
from deattack.attack.problems import Problem, bucket_size, build_problems
from deattack.attack.record import Record
from deattack.attack.results import ResultsFolder, summarize
from deattack.attack.runner import Progress, SlotRunner
from deattack.victims import loading
from deattack.victims.victim import Victim, check_image_shape, predict


@dataclasses.dataclass
class AttackResults:
    """Records (one dict per image x target), their summary, and the clean images the
    records refer to (`image_indices` [M] naming the rows of `images` [M, H, W, C]
    float32), from which `adversarial_images()` rebuilds the successes."""

    records: list[dict[str, Any]]
    summary: dict[str, Any]
    config: AttackConfig
    # Left out of == (an array has no single truth value) and repr.
    image_indices: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), repr=False,
                                                  compare=False)
    images: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.float32), repr=False,
                                           compare=False)

    def adversarial_images(self) -> AdversarialImages:
        """The successes' adversarial images with their clean images, image indices,
        targets, true labels and the victim's predictions (`AdversarialImages`).

        With `out=`, they cover every success in the folder: a clean image this call did
        not load is read back from the folder's adversarial.npz; a success whose image
        neither holds (a call killed before it wrote the file) is left out.
        """
        return adversarial.build(self.records, self.image_indices, self.images)

    @property
    def success(self) -> np.ndarray:
        return np.asarray([r["success"] for r in self.records], bool)

    @property
    def queries(self) -> np.ndarray:
        return np.asarray([r["queries"] for r in self.records], np.int64)


def validate_inputs(images: np.ndarray, labels: np.ndarray, num_classes: int | None,
                    targets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Checks shapes, dtypes, ranges and finiteness; returns float32 images, int labels.

    Raises:
      ValueError naming the offending argument.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, 3], got shape {images.shape}")
    if images.shape[-1] != 3:
        # A pixel's genes are (x, y, r, g, b): other channel counts need their own encoding.
        raise ValueError(f"images must have 3 colour channels (RGB), got {images.shape[-1]} (shape "
                         f"{images.shape}); a one-channel image becomes RGB with np.repeat(images, 3, axis=-1) "
                         "if the victim takes RGB")
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"images must be uint8 or float in [0, 255], got dtype {images.dtype}")
    if np.issubdtype(images.dtype, np.floating) and not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or Inf values")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"images must lie in [0, 255], got range [{images.min()}, {images.max()}]")
    if np.issubdtype(images.dtype, np.floating) and images.size >= 3 * 64 and 0 < images.max() <= 1.0:
        # Colours are written in 0..255: on [0, 1] images every changed pixel would be far
        # out of range (sparse-rs#3: attacks silently weak on normalised inputs).
        raise ValueError(f"images look like [0, 1] (max {images.max():.3g}) but deattack's images are [0, 255]: "
                         "multiply by 255; a victim that takes [0, 1] declares it (Victim.from_fn(fn, "
                         "input_range=(0, 1))) and gets [0, 1] images")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({images.shape[0]},), got {labels.dtype} {labels.shape}")
    num_classes = num_classes or np.iinfo(np.int32).max  # None: range checked once C is known
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    if targets is not None:
        targets = np.asarray(targets)
        if targets.shape != labels.shape:
            raise ValueError(f"targets must have shape {labels.shape}, got {targets.shape}")
        if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
            raise ValueError(f"targets must be in [0, {num_classes})")
        clash = np.flatnonzero(targets == labels)
        if clash.size:
            raise ValueError(f"target equals the true label for images at positions {clash[:10].tolist()}")
    return images.astype(np.float32), labels.astype(np.int64)


def attack(
    victim,
    images: np.ndarray,
    labels: np.ndarray,
    config: AttackConfig | None = None,
    *,
    preset: str | None = None,
    targets: np.ndarray | None = None,
    image_indices: Sequence[int] | None = None,
    out: str | None = None,
    run_info: dict[str, Any] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_finished: Callable[[list[dict[str, Any]]], None] | None = None,
    finished: Sequence[dict[str, Any]] = (),
) -> AttackResults:
    """Few-pixel attack of every image (and target) on the victim, by the config's search.

    Args:
      victim: a `deattack.victims.Victim`, or a shipped victim name / checkpoint path.
      images: [N, H, W, 3] uint8 or float in [0, 255]. labels: [N] int true classes.
      config: an AttackConfig. Default: default_config(preset=preset), the one default
        `deattack attack` runs too (1 pixel, untargeted, the operator study's choice at
        the paper's budget; preset="su2019": the paper's DE/rand/1).
      preset: with no config, "su2019" for the paper's setting.
      targets: optional [N] target classes for targeted mode (else config.targets).
      image_indices: global ids of the images (default 0..N-1); they name records
        and seed each problem's PRNG stream.
      out: optional folder; records are appended there as problems finish and a
        rerun skips problems already recorded; its adversarial.npz is rewritten at the end.
      run_info: extra facts stored in out/config.json (e.g. the victim checkpoint).
      on_finished: called with each batch of records as its problems finish (a
        caller's own checkpoint, as `out` is this function's).
      finished: records of problems an earlier, stopped call already finished (same
        images, config and targets): those problems are not attacked again and their
        records are returned as given. Every problem's PRNG stream depends on its
        image id and target only, so the records equal an uninterrupted call's.

    Returns:
      AttackResults with one record per problem (including those already in `out`).

    Example:
      >>> victim = load_victim("resnet20")
      >>> images, labels = data.load_split("test")
      >>> results = attack(victim, images[:10], labels[:10], paper_config(pixels=1))
      >>> results.summary["success_rate"]
    """
    config = _resolve_config(config, preset)
    victim = _as_victim(victim)
    images, labels, clean_logits, num_classes = _checked_inputs(victim, images, labels, config, targets)
    indices = _image_indices(image_indices, len(images))
    all_problems = build_problems(config, labels, indices, targets, num_classes)  # before `out` is made
    store = None
    if out is not None:
        store = ResultsFolder(out, {"attack": config.search_key(), "victim": victim.name,
                                    "victim_sha256": victim.metadata.get("sha256"), **(run_info or {})})
    problems, carried = _to_attack(all_problems, store.completed() if store else set(), finished)

    started = time.time()
    runnable, records = _screen_nonfinite(problems, clean_logits)
    if store is not None:
        store.append(list(carried.values()) + records)
    if on_finished is not None and records:
        on_finished(records)

    new_records, progress = _run(config, victim, images, clean_logits, runnable, store, on_finished, on_progress)
    records = list(carried.values()) + records + new_records
    all_records = (store.records if store is not None else records)
    summary = _summary(all_records, time.time() - started, progress, victim.name, config)
    return _results(all_records, summary, config, store, indices, images)


def _checked_inputs(victim: Victim, images, labels, config: AttackConfig, targets):
    """(float32 images, int labels, clean logits, class count), every input checked: shapes
    and ranges before the victim runs, labels and targets against its class count after."""
    validate_inputs(images, labels, None, targets)
    if targets is not None and config.mode != "targeted":
        raise ValueError(f"targets were given but mode={config.mode!r}; use mode='targeted'")
    images = np.asarray(images, np.float32)
    check_image_shape(victim, images.shape[1:])
    clean_logits = predict(victim, images, batch_size=min(len(images), 256) or 1) if len(images) else None
    num_classes = int(clean_logits.shape[-1]) if clean_logits is not None else 10
    images, labels = validate_inputs(images, labels, num_classes, targets)
    return images, labels, clean_logits, num_classes


def _run(config: AttackConfig, victim: Victim, images: np.ndarray, clean_logits: np.ndarray,
         problems: list[Problem], store: ResultsFolder | None, on_finished, on_progress) -> tuple[list[dict], Progress]:
    """Runs the problems through the search's runner; records go to the store and
    `on_finished` as they finish."""
    def verify(perturbed: np.ndarray) -> np.ndarray:
        return predict(victim, perturbed, batch_size=bucket_size(len(perturbed), 64))

    # A generational optimiser runs in the device slots; the corner scan has its own runner.
    runner_class = SlotRunner if config.search_entry.optimiser is not None else ExhaustiveRunner
    runner = runner_class(config, victim.apply_fn, victim.variables, images, verify, clean_logits,
                          module=victim.module)

    def record_batch(batch: list[dict[str, Any]]) -> None:
        if store is not None:
            store.append(batch)
        if on_finished is not None:
            on_finished(batch)

    return runner.run(problems, on_finished=record_batch, on_progress=on_progress)


def _results(records: list[dict[str, Any]], summary: dict[str, Any], config: AttackConfig,
             store: ResultsFolder | None, indices: np.ndarray, images: np.ndarray) -> AttackResults:
    """AttackResults; with a folder, its adversarial.npz rewritten from all its records
    (clean images of earlier calls read back from the previous file)."""
    if store is None:
        return AttackResults(records, summary, config, indices, images)
    path = store.folder / adversarial.ADVERSARIAL_FILE
    known_indices, known = adversarial.known_images(adversarial.read(path), indices, images)
    results = AttackResults(records, summary, config, known_indices, known)
    summary["adversarial"] = str(adversarial.write(path, results.adversarial_images()))
    return results


def _as_victim(victim) -> Victim:
    """A Victim, or a shipped victim name / checkpoint path loaded as one."""
    if isinstance(victim, Victim):
        return victim
    if isinstance(victim, (str, os.PathLike)):
        return loading.load_victim(str(victim))
    if callable(victim):
        raise TypeError("a function is not a victim: wrap it with deattack.Victim.from_fn(fn) (fn: images "
                        "[N, H, W, C] -> logits), or Victim.from_flax / from_callback / from_torch")
    raise TypeError(f"victim must be a deattack.Victim, a shipped victim name or a checkpoint path, got "
                    f"{type(victim).__name__}")


def _resolve_config(config: AttackConfig | None, preset: str | None) -> AttackConfig:
    if config is None:
        return default_config(preset=preset)
    if preset is not None:
        raise ValueError("give a config or a preset, not both (default_config(preset=...) makes a config)")
    return config


def _image_indices(image_indices: Sequence[int] | None, count: int) -> np.ndarray:
    indices = np.arange(count) if image_indices is None else np.asarray(image_indices, np.int64)
    if indices.shape != (count,):
        raise ValueError(f"image_indices must have shape ({count},), got {indices.shape}")
    if len(np.unique(indices)) != len(indices):
        raise ValueError("image_indices must be distinct: they name records and seed PRNG streams")
    return indices


def _to_attack(all_problems: list[Problem], done: set[tuple[int, int]],
               finished: Sequence[dict[str, Any]]) -> tuple[list[Problem], dict[tuple[int, int], dict]]:
    """(problems to attack, records carried from `finished`): problems already in the
    output folder (`done`) or in `finished` are not attacked again."""
    wanted = {(p.image_index, p.target) for p in all_problems}
    carried = {(int(r["image_index"]), int(r["target"])): dict(r) for r in finished
               if (int(r["image_index"]), int(r["target"])) in wanted and
               (int(r["image_index"]), int(r["target"])) not in done}
    return [p for p in all_problems if (p.image_index, p.target) not in done | carried.keys()], carried


def _summary(records: list[dict[str, Any]], wall: float, progress: Progress, model: str,
             config: AttackConfig) -> dict[str, Any]:
    summary = summarize(records, wall, progress.queries)
    summary.update({"model": model, "pixels": config.pixels, "mode": config.mode,
                    "mutation": config.mutation, "crossover": config.crossover,
                    "adaptation": config.adaptation, "population_size": config.population_size,
                    "max_generations": config.max_generations, "queries_this_run": progress.queries})
    return summary


def _screen_nonfinite(problems: list[Problem], clean_logits) -> tuple[list[Problem], list[dict]]:
    """Problems whose clean image already gives NaN/Inf logits are recorded, not attacked."""
    if clean_logits is None:
        return problems, []
    bad_rows = set(np.flatnonzero(~np.all(np.isfinite(clean_logits), axis=-1)).tolist())
    runnable = [p for p in problems if p.row not in bad_rows]
    records = [Record.nonfinite(p.image_index, p.label, p.target).to_dict() for p in problems if p.row in bad_rows]
    return runnable, records
