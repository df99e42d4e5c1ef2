"""The few-pixel attack: encoding, perturbation, criteria, and the batched runner."""

from deattack.attack.adversarial import AdversarialImages
from deattack.attack.api import AttackResults, attack, validate_inputs
from deattack.attack.config import AttackConfig, default_config, paper_config, recommended_config
from deattack.attack.results import ResultsFolder, summarize

__all__ = ["AdversarialImages", "AttackConfig", "AttackResults", "ResultsFolder", "attack", "default_config",
           "paper_config", "recommended_config", "summarize", "validate_inputs"]
