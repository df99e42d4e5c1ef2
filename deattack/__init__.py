"""deattack: batched differential-evolution few-pixel attacks on JAX/Flax CNNs.

    >>> import deattack
    >>> results = deattack.attack("resnet20", images, labels, deattack.AttackConfig(pixels=1))
"""

from deattack.attack import AttackConfig, AttackResults, attack, paper_config
from deattack.victims.loading import load_victim
from deattack.victims.victim import Victim

__version__ = "0.1.0"
__all__ = ["AttackConfig", "AttackResults", "Victim", "attack", "load_victim", "paper_config"]
