"""Training recipes of the shipped victims (`deattack train` uses the same values).

  deattack train --model resnet20 --epochs 20 --learning-rate 0.1   # ~89-91 %, hours on 2 CPU cores
  deattack train --model lenet --epochs 30 --learning-rate 0.05     # ~70 %, ~40 min on 2 CPU cores

Variants: "resnet20", "lenet", "nin", "allconv", "vgg16", "resnet20-par" (the GPU
campaign's, scripts/device_run.sh), "smoke".
"""

from deattack.training.train import TrainConfig

RECIPES = {
    "resnet20": TrainConfig(model="resnet20", epochs=20, learning_rate=0.1),
    "lenet": TrainConfig(model="lenet", epochs=30, learning_rate=0.05),
    # Su et al.'s victims: GPU-sized (see README); same recipe, longer schedule.
    "nin": TrainConfig(model="nin", epochs=60, learning_rate=0.05),
    "allconv": TrainConfig(model="allconv", epochs=60, learning_rate=0.05),
    "vgg16": TrainConfig(model="vgg16", epochs=60, learning_rate=0.05),
    # The GPU campaign's resnet20 at He et al.'s 91.25 %: their 164-epoch schedule cut to
    # 100 cosine epochs (a few minutes on one H100; resumable across leases).
    "resnet20-par": TrainConfig(model="resnet20", epochs=100, learning_rate=0.1),
    "smoke": TrainConfig(model="lenet", epochs=1, batch_size=32, train_limit=256, test_limit=128,
                         eval_batch_size=64),
}


def get_config(variant: str = "resnet20") -> TrainConfig:
    if (variant or "resnet20") not in RECIPES:
        raise ValueError(f"unknown training recipe {variant!r}; known: {', '.join(RECIPES)}")
    return RECIPES[variant or "resnet20"]
