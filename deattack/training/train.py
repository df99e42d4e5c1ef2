"""Victim training: optax SGD-Nesterov, warmup + cosine schedule, on-device
augmentation, BatchNorm state, eval every epoch, resumable checkpoints.

Resuming is exact: the batch order of epoch e comes from fold_in(seed, e) and the
augmentation key of step s from fold_in(seed, s), so a run killed at any
checkpoint and restarted with the same command ends with the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deattack import checkpoint, data
from deattack.io_checks import check_output_dir, check_output_file
from deattack.models import get_model
from deattack.training.augment import compose, describe, split_specs


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static description of a training run (stored in every checkpoint's metadata)."""

    model: str = "resnet20"
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.1  # peak of the schedule
    warmup_epochs: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 5e-4  # on kernels only, not on biases or BatchNorm
    label_smoothing: float = 0.0
    augmentations: tuple[str, ...] = ("crop", "flip")
    seed: int = 0
    checkpoint_every_steps: int = 100
    eval_batch_size: int = 500
    train_limit: int | None = None  # first N training images only (smoke runs)
    test_limit: int | None = None  # first N test images for the per-epoch eval

    def __post_init__(self):
        for name in ("epochs", "batch_size", "checkpoint_every_steps", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        # "crop,flip,dead_pixels:k=1-3" (e.g. from --set) splits into specs; plain names stay as given.
        object.__setattr__(self, "augmentations", split_specs(self.augmentations))
        compose(self.augmentations)  # unknown names or bad options fail here, before any work
        get_model(self.model)


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    total_steps = config.epochs * steps_per_epoch
    warmup_steps = min(int(config.warmup_epochs * steps_per_epoch), total_steps - 1)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, max(warmup_steps, 1), total_steps, end_value=0.0)

    def is_kernel(params):
        return jax.tree.map(lambda leaf: leaf.ndim > 1, params)

    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=is_kernel),
        optax.sgd(schedule, momentum=config.momentum, nesterov=True),
    )


def init_state(config: TrainConfig, model, optimizer) -> TrainState:
    variables = model.init(jax.random.key(config.seed), jnp.zeros((1, *data.IMAGE_SHAPE), jnp.float32))
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=optimizer.init(params))


def make_train_step(config: TrainConfig, model, optimizer) -> Callable:
    augment = compose(config.augmentations)
    base_key = jax.random.key(config.seed)

    def eval_apply(variables, images):  # what an augmentation that attacks the model sees
        return model.apply(variables, images, train=False)

    @jax.jit
    def train_step(state: TrainState, images_all, labels_all, batch_indices):
        step_key = jax.random.fold_in(base_key, state.step)
        augment_key, dropout_key = jax.random.split(step_key)
        labels = labels_all[batch_indices]
        current = {"params": state.params, "batch_stats": state.batch_stats}
        images = augment(augment_key, images_all[batch_indices].astype(jnp.float32), labels,
                         (eval_apply, current))

        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats}, images, train=True,
                mutable=["batch_stats"], rngs={"dropout": dropout_key})
            targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), config.label_smoothing)
            loss = optax.softmax_cross_entropy(logits, targets).mean()
            return loss, (logits, updates.get("batch_stats", {}))

        (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_state = TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                               batch_stats=batch_stats, opt_state=opt_state)
        metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}
        return new_state, metrics

    return train_step


def make_logits_fn(model) -> Callable:
    """Jitted `logits(variables, images [N,32,32,3] in [0,255]) -> [N, C]` in eval mode."""
    return jax.jit(lambda variables, images: model.apply(variables, images, train=False))


def evaluate(logits_fn, variables, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy over (images, labels), in fixed-size batches (one compile)."""
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        size = len(batch)
        if size < batch_size:  # pad the tail so the jitted function keeps one shape
            batch = np.concatenate([batch, np.zeros((batch_size - size, *batch.shape[1:]), batch.dtype)])
        predictions = np.asarray(jnp.argmax(logits_fn(variables, batch), -1))[:size]
        correct += int((predictions == labels[start:start + size]).sum())
    return correct / max(len(images), 1)


def epoch_batches(config: TrainConfig, epoch: int, num_train: int) -> np.ndarray:
    """Batch indices [steps_per_epoch, batch_size] of one epoch (drop-last)."""
    key = jax.random.fold_in(jax.random.key(config.seed + 1), epoch)
    order = np.asarray(jax.random.permutation(key, num_train))
    steps = num_train // config.batch_size
    return order[: steps * config.batch_size].reshape(steps, config.batch_size)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def count_params(params) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def _recorded_epochs(workdir: Path) -> set[int]:
    """Epochs with a line in history.jsonl (a line torn by a kill mid-append is skipped)."""
    path = workdir / "history.jsonl"
    epochs = set()
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            epochs.add(int(json.loads(line)["epoch"]))
        except (ValueError, KeyError, TypeError):
            continue
    return epochs


def _append_line(path: Path, line: str) -> None:
    """Appends one line, starting a new one if a kill left the last line unterminated."""
    torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as stream:
        stream.write(("\n" if torn else "") + line + "\n")


def _load_arrays(config: TrainConfig, data_dir: str | None,
                 arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None):
    """(train images, train labels, test images, test labels): `arrays` or the dataset,
    cut to the config's train_limit / test_limit."""
    if arrays is None:
        train_images, train_labels = data.load_split("train", data_dir)
        test_images, test_labels = data.load_split("test", data_dir)
    else:
        train_images, train_labels, test_images, test_labels = arrays
    if config.train_limit:
        train_images, train_labels = train_images[: config.train_limit], train_labels[: config.train_limit]
    if config.test_limit:
        test_images, test_labels = test_images[: config.test_limit], test_labels[: config.test_limit]
    return train_images, train_labels, test_images, test_labels


def _restore(config: TrainConfig, workdir: Path, state: TrainState) -> tuple[TrainState, float | None]:
    """The state saved in `workdir` and its last train loss; (state, None) if none is saved."""
    state_path = workdir / "state"
    if not checkpoint.exists(state_path):
        return state, None
    saved_config = checkpoint.read_metadata(state_path).get("config")
    if saved_config != _config_dict(config):
        raise ValueError(
            f"{workdir} holds a run with another config ({saved_config}); "
            "rerun with the same settings to resume, or pick a new --workdir")
    state, saved = checkpoint.restore(state_path, state)
    return state, saved.get("train_loss")


@dataclasses.dataclass(frozen=True)
class _TrainingRun:
    """What stays fixed over one train() call: the config, the folders, the jitted
    functions, the data and the callbacks."""

    config: TrainConfig
    workdir: Path
    export_path: str | Path | None
    steps_per_epoch: int
    total_steps: int
    train_step: Callable
    logits_fn: Callable
    train_images: jax.Array  # on device, indexed by each batch inside train_step
    train_labels: jax.Array
    test_images: np.ndarray
    test_labels: np.ndarray
    started: float  # time.time() when training started, for the history's elapsed_s
    on_step: Callable[[int, int, dict], None] | None
    on_epoch: Callable[[dict], None] | None


def _save_state(run: _TrainingRun, state: TrainState, loss: float) -> None:
    """Saves the resumable state, with the config a resume must match."""
    checkpoint.save(run.workdir / "state", state, {"config": _config_dict(run.config), "step": int(state.step),
                                                    "train_loss": loss})


def _train_epoch(run: _TrainingRun, state: TrainState, step: int) -> tuple[TrainState, int, float]:
    """Trains from `step` to the end of its epoch, saving the state every
    checkpoint_every_steps and at the end; returns (state, step, last train loss)."""
    batches = epoch_batches(run.config, step // run.steps_per_epoch, len(run.train_images))
    for position in range(step % run.steps_per_epoch, run.steps_per_epoch):
        state, metrics = run.train_step(state, run.train_images, run.train_labels, batches[position])
        step += 1
        if run.on_step is not None:
            run.on_step(step, run.total_steps, metrics)
        if step % run.config.checkpoint_every_steps == 0:
            _save_state(run, state, float(metrics["loss"]))
    _save_state(run, state, float(metrics["loss"]))
    return state, step, float(metrics["loss"])


def _finish_epoch(run: _TrainingRun, state: TrainState, epoch: int, loss: float | None) -> dict[str, Any]:
    """Eval, export, then the history line. The line is written last and marks the epoch
    done: a run killed before it redoes this on resume (the export gets the same bytes),
    a run killed after it does not, so every epoch is exported and recorded once."""
    config = run.config
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    accuracy = evaluate(run.logits_fn, variables, run.test_images, run.test_labels, config.eval_batch_size)
    metadata = {
        "model": config.model, "params": count_params(state.params), "test_accuracy": accuracy,
        "test_accuracy_first_1000": evaluate(run.logits_fn, variables, run.test_images[:1000],
                                             run.test_labels[:1000], config.eval_batch_size),
        "test_images": len(run.test_images), "epochs_done": epoch + 1, "epochs": config.epochs,
        "seed": config.seed, "data": f"tfds {data.DATASET} (canonical order)",
        "config": _config_dict(config), "augmentations": describe(config.augmentations),
        "jax_version": jax.__version__, "device": jax.devices()[0].device_kind,
    }
    if run.export_path is not None:
        checkpoint.save(run.export_path, variables, metadata)
    record = {"epoch": epoch + 1, "step": int(state.step), "test_accuracy": accuracy,
              "train_loss": loss, "elapsed_s": round(time.time() - run.started, 1)}
    _append_line(run.workdir / "history.jsonl", json.dumps(record))
    if run.on_epoch is not None:
        run.on_epoch(record)
    return metadata


def _finished_metadata(run: _TrainingRun, state: TrainState) -> dict[str, Any]:
    """The metadata of a run that had nothing left to train (what its export says)."""
    config = run.config
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    accuracy = evaluate(run.logits_fn, variables, run.test_images, run.test_labels, config.eval_batch_size)
    return {"model": config.model, "params": count_params(state.params),
            "test_accuracy": accuracy, "test_images": len(run.test_images),
            "epochs_done": config.epochs, "epochs": config.epochs, "seed": config.seed,
            "config": _config_dict(config)}


def _check_export_is_ours(config: TrainConfig, workdir: Path, export_path: str | Path) -> None:
    """Refuses to replace a checkpoint that this run (this workdir's state, this config)
    did not export."""
    if not checkpoint.exists(export_path):
        return
    resuming = checkpoint.exists(workdir / "state")
    if resuming and checkpoint.read_metadata(export_path).get("config") == _config_dict(config):
        return
    raise ValueError(f"{export_path} already holds a checkpoint this run did not write (a shipped victim, or "
                     "another run's): pick another --out, or pass --overwrite to replace it")


def train(
    config: TrainConfig,
    workdir: str | Path,
    export_path: str | Path | None = None,
    *,
    data_dir: str | None = None,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    on_step: Callable[[int, int, dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Trains (or resumes) `config.model`; returns the final metadata.

    `workdir` holds the resumable state (`state.msgpack` + `state.json`) and
    `history.jsonl`; rerunning with the same workdir and config continues where a
    killed run stopped. `export_path` gets the eval-mode weights and metadata that
    `deattack eval` / `attack` load. A checkpoint already there is replaced only when it
    is this run's own export (a resumed run re-exports each epoch) or with `overwrite`:
    a shipped victim is never replaced by accident.
    """
    workdir = check_output_dir(workdir, "training workdir (--workdir)")  # before data loads
    if export_path is not None:
        check_output_file(checkpoint.paths_for(export_path)[0], "exported checkpoint (--out)")
        if not overwrite:
            _check_export_is_ours(config, workdir, export_path)
    train_images, train_labels, test_images, test_labels = _load_arrays(config, data_dir, arrays)
    steps_per_epoch = len(train_images) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(train_images)} training images")
    model = get_model(config.model)
    optimizer = make_optimizer(config, steps_per_epoch)
    state, saved_loss = _restore(config, workdir, init_state(config, model, optimizer))
    run = _TrainingRun(
        config=config, workdir=workdir, export_path=export_path, steps_per_epoch=steps_per_epoch,
        total_steps=config.epochs * steps_per_epoch, train_step=make_train_step(config, model, optimizer),
        logits_fn=make_logits_fn(model), train_images=jnp.asarray(train_images),
        train_labels=jnp.asarray(train_labels), test_images=test_images, test_labels=test_labels,
        started=time.time(), on_step=on_step, on_epoch=on_epoch)

    step = int(state.step)
    metadata: dict[str, Any] = {}
    if step and step % steps_per_epoch == 0 and step // steps_per_epoch not in _recorded_epochs(workdir):
        # Killed between an epoch's last state save and its history line: finish that epoch.
        metadata = _finish_epoch(run, state, step // steps_per_epoch - 1, saved_loss)
    while step < run.total_steps:
        epoch = step // steps_per_epoch
        state, step, loss = _train_epoch(run, state, step)
        metadata = _finish_epoch(run, state, epoch, loss)
    if not metadata:  # already finished: report what the exported checkpoint says
        metadata = _finished_metadata(run, state)
    return metadata
