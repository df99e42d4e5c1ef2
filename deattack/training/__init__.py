"""Training victims: the resumable Flax + optax loop (deattack.training.train) and the batch
augmentations, defensive ones included (deattack.training.augment: crop, flip,
dead_pixels, de_attack)."""
