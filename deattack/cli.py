"""`deattack train | eval | attack`: thin wrappers over library functions.

Progress bars and printing live here only; everything else is importable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path


def _default_data_dir() -> None:
    """Points tfds at ../shared/tensorflow_datasets beside the repo when that exists."""
    if "TFDS_DATA_DIR" not in os.environ:
        candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "tensorflow_datasets"
        if candidate.is_dir():
            os.environ["TFDS_DATA_DIR"] = str(candidate)


def _train(args) -> int:
    from tqdm import tqdm

    from deattack import train as training
    from deattack.overrides import apply_overrides

    config = training.TrainConfig(model=args.model)
    config = apply_overrides(config, [*(f"{k}={v}" for k, v in _flag_overrides(args).items()), *args.set])
    workdir = Path(args.workdir or f"runs/train/{config.model}")
    export = args.out or f"checkpoints/{config.model}"
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

    metadata = training.train(config, workdir, export, on_step=on_step, on_epoch=on_epoch)
    bar.close()
    print(json.dumps({k: metadata[k] for k in ("model", "params", "test_accuracy", "epochs_done")}))
    return 0


def _flag_overrides(args) -> dict:
    chosen = {}
    for name in ("epochs", "batch_size", "learning_rate", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            chosen[name] = value
    return chosen


def _eval(args) -> int:
    from deattack import data
    from deattack.victim import correctly_classified, load_victim

    victim = load_victim(args.checkpoint or args.model)
    images, labels = data.load_split("test")
    chosen = data.select(labels, start=0, stop=args.images)
    started = time.time()
    correct = correctly_classified(victim, images[chosen], labels[chosen])
    result = {
        "model": victim.name, "accuracy": float(correct.mean()), "n_images": int(len(chosen)),
        "params": victim.metadata.get("params"), "recorded_accuracy": victim.metadata.get("test_accuracy"),
        "wall_s": round(time.time() - started, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']}: test accuracy {result['accuracy']:.4f} on {result['n_images']} images "
              f"({result['params']} parameters)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deattack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a victim CNN on CIFAR-10 (resumable)")
    train.add_argument("--model", default="resnet20")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", dest="batch_size", type=int)
    train.add_argument("--learning-rate", dest="learning_rate", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--workdir", help="resumable state (default runs/train/MODEL)")
    train.add_argument("--out", help="exported checkpoint path (default checkpoints/MODEL)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any TrainConfig field, e.g. --set label_smoothing=0.1")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="test accuracy of a victim checkpoint")
    evaluate.add_argument("--model", default="resnet20", help="shipped victim name")
    evaluate.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    evaluate.add_argument("--images", type=int, default=None, help="first N test images (default all)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    _default_data_dir()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"deattack {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
