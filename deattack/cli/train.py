"""`deattack train`: train a victim (resumable), with augmentations and --set overrides."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deattack import config_files
from deattack.models import MODELS
from deattack.overrides import apply_overrides
from deattack.training import train as training
from deattack.training.augment import defense_tag
from deattack.victims.loading import shipped_victims


def _train(args) -> int:
    from tqdm import tqdm

    if args.config:
        config = config_files.load(args.config, training.TrainConfig)
    else:
        config = training.TrainConfig(model=args.model)
    config = apply_overrides(config, [*(f"{k}={v}" for k, v in _flag_overrides(args).items()), *args.set])
    # A defended model gets its own name (resnet20 + dead_pixels -> resnet20_deadpixel), so it
    # never overwrites the undefended twin's checkpoint or resumes its run.

    name = "_".join(filter(None, [config.model, defense_tag(config.augmentations)]))
    workdir = Path(args.workdir or f"runs/train/{name}")
    export = args.out or str(workdir / "checkpoint")  # never a shipped victim
    bar = tqdm(total=None, unit="step", mininterval=1.0 if sys.stderr.isatty() else 60.0,
               dynamic_ncols=True, file=sys.stderr)

    def on_step(step, total, metrics):
        if bar.total is None:
            bar.reset(total=total)
            bar.update(step)
        else:
            bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{float(metrics['loss']):.3f}", acc=f"{float(metrics['accuracy']):.3f}")

    def on_epoch(record):
        bar.write(json.dumps(record))

    metadata = training.train(config, workdir, export, on_step=on_step, on_epoch=on_epoch,
                              overwrite=args.overwrite)
    bar.close()
    print(json.dumps({k: metadata[k] for k in ("model", "params", "test_accuracy", "epochs_done")}))
    return 0


def _flag_overrides(args) -> dict:
    chosen = {}
    for name in ("epochs", "batch_size", "learning_rate", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            chosen[name] = value
    if getattr(args, "augment", None) is not None:
        chosen["augmentations"] = args.augment
    return chosen


def add_train_commands(commands) -> None:
    """`deattack train`."""
    train = commands.add_parser("train", help="train a victim CNN on CIFAR-10 (resumable)")
    train.add_argument("--model", default="resnet20", help=f"architecture: {', '.join(MODELS)} (shipped victims, "
                                                           f"trained: {', '.join(shipped_victims())})")
    train.add_argument("--config", help="configs/train.py[:recipe] returning a TrainConfig")
    train.add_argument("--epochs", type=int, help="epochs (default: 30, or --config's)")
    train.add_argument("--batch-size", dest="batch_size", type=int, help="images a step (default: 128, or --config's)")
    train.add_argument("--learning-rate", dest="learning_rate", type=float,
                       help="peak of the warm-up cosine schedule (default: 0.1, or --config's)")
    train.add_argument("--seed", type=int, help="initialisation and data-order seed (default: 0, or --config's)")
    train.add_argument("--augment", help="augmentation specs, e.g. crop,flip,dead_pixels:k=1-3,p=0.5,values=saturated "
                                         "or crop,flip,de_attack:fraction=0.25 (deattack.training.augment); "
                                         "'none' for none")
    train.add_argument("--workdir", help="resumable state (default runs/train/MODEL)")
    train.add_argument("--out", help="exported checkpoint path (default WORKDIR/checkpoint; checkpoints/NAME makes "
                                     "it loadable as --model NAME)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a checkpoint already at --out that this run did not write")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any TrainConfig field, e.g. --set label_smoothing=0.1")
    train.set_defaults(run=_train)
