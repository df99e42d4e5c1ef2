"""Subprocess body of test_kill_training.py: a tiny resumable training run (lenet on
synthetic images) that stops dead at a chosen point, where the test kills it with -9.

  python tests/training/train_driver.py WORKDIR EXPORT [EVENT[@N]]

Events, in the order a run meets them: "step S" after train step S; "written NAME
(step S)" when a checkpoint file's temporary copy is complete, before the rename that
publishes it; "renamed NAME (step S)" right after that rename. EVENT@N stops at the
N-th event of this process whose text starts with EVENT ("" matches every event):
the driver prints "HANG <event>" and sleeps until it is killed. Without EVENT it
trains to the end and prints "DONE".

JAX's persistent compilation cache (JAX_COMPILATION_CACHE_DIR, set by the test) spares
each restart the compiles of the previous one.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from deattack.training import train  # noqa: E402

CONFIG = train.TrainConfig(model="lenet", epochs=2, batch_size=16, learning_rate=0.05,
                           checkpoint_every_steps=4, eval_batch_size=32)
# 96 training images / batch 16 = 6 steps an epoch, 12 in all; the state is saved at
# steps 4, 6 (epoch end), 8, 12 and 12 (epoch end), the export at 6 and 12.


def arrays(num_train: int = 96, num_test: int = 32):
    """Images whose mean colour depends on the class, so a few steps move the weights."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, num_train + num_test).astype(np.int32)
    images = rng.normal(60 + 15 * labels[:, None, None, None], 20, (num_train + num_test, 32, 32, 3))
    images = np.clip(images, 0, 255).astype(np.uint8)
    return images[:num_train], labels[:num_train], images[num_train:], labels[num_train:]


def main(workdir: str, export: str, hang: str | None) -> None:
    prefix, _, count = (hang or "").partition("@")
    wanted = int(count or 1)
    seen = {"count": 0, "step": 0}

    def event(text: str) -> None:
        if hang is None or not text.startswith(prefix):
            return
        seen["count"] += 1
        if seen["count"] == wanted:
            print(f"HANG {text}", flush=True)
            time.sleep(600)

    real_replace = os.replace

    folders = {Path(workdir).resolve(), Path(export).resolve().parent}

    def replace(source, destination):  # checkpoint.atomic_write_bytes publishes files with it
        if Path(destination).resolve().parent not in folders:  # e.g. JAX's compilation cache
            return real_replace(source, destination)
        name = f"{Path(destination).name} (step {seen['step']})"
        event(f"written {name}")
        real_replace(source, destination)
        event(f"renamed {name}")

    os.replace = replace

    def on_step(step, total, metrics):
        seen["step"] = step
        event(f"step {step}")

    train.train(CONFIG, workdir, export, arrays=arrays(), on_step=on_step)
    print("DONE", flush=True)


if __name__ == "__main__":
    import jax

    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
