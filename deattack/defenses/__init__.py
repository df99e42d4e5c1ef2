"""The defense study: a sweep of attacks against defended and undefended victims, clean
accuracy, transfer from the undefended twin, verdicts (evaluate) and its report (report).

The defenses themselves live below: inference-time filters in deattack.filters, wrapped
around a victim by deattack.victims.defended ("median3+resnet20"); training-time ones are
augmentations in deattack.training.augment (`deattack train --augment dead_pixels`).
"""

from deattack.defenses.evaluate import DefenseEvalConfig, run_defenses
from deattack.defenses.report import write_report

__all__ = ["DefenseEvalConfig", "run_defenses", "write_report"]
