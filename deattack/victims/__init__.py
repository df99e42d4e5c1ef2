"""Victims: a classifier as `Victim(apply_fn, variables)`, its predictions, defended
victims (an inference-time filter in front of a classifier, "median3+resnet20"), and
loading a shipped name or a checkpoint path as a Victim."""

from deattack.victims.defended import DEFENSES, Defense, parse_defense, wrap
from deattack.victims.loading import CHECKPOINT_DIR, checkpoint_path, load_defended, load_victim
from deattack.victims.victim import Victim, correctly_classified, predict, victim_fingerprint

__all__ = ["CHECKPOINT_DIR", "DEFENSES", "Defense", "Victim", "checkpoint_path", "correctly_classified",
           "load_defended", "load_victim", "parse_defense", "predict", "victim_fingerprint", "wrap"]
