"""The few-pixel attack: encoding, perturbation, criteria, and the batched runner."""

from deattack.attack.api import AttackResults, attack, validate_inputs
from deattack.attack.config import AttackConfig, paper_config, recommended_config
from deattack.attack.results import ResultStore, summarize

__all__ = ["AttackConfig", "AttackResults", "ResultStore", "attack", "paper_config", "recommended_config", "summarize",
           "validate_inputs"]
