"""deattack: batched few-pixel (L0) attacks on JAX/Flax image classifiers.

    >>> import deattack
    >>> from deattack import data
    >>> images, labels = data.load_split("test")
    >>> results = deattack.attack("resnet20", images[:10], labels[:10])                    # the default
    >>> results = deattack.attack("resnet20", images[:10], labels[:10], preset="su2019")   # the paper's
"""

from deattack.attack import AttackConfig, AttackResults, attack, default_config, paper_config
from deattack.victims.loading import load_victim
from deattack.victims.victim import Victim

__version__ = "0.1.0"
__all__ = ["AttackConfig", "AttackResults", "Victim", "attack", "default_config", "load_victim", "paper_config"]
