"""Exact statistics the reports quote: Wilson 95% intervals for success rates, McNemar's
exact test for paired success/failure, and the exact sign-flip test for paired counts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (no continuity correction).

    Returns:
      (low, high) in [0, 1]; (0, 1) when trials is 0.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts b and c.

    Under the null hypothesis each discordant pair is b or c with probability 1/2, so
    p = min(1, 2 P(Binomial(b + c, 1/2) <= min(b, c))), computed with integers.
    """
    if only_first < 0 or only_second < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_first}, {only_second}")
    total = only_first + only_second
    if total == 0:
        return 1.0
    tail = sum(math.comb(total, k) for k in range(min(only_first, only_second) + 1))
    return min(1.0, 2 * tail / 2**total)


def sign_flip_exact(differences: Sequence[int]) -> float:
    """Exact two-sided sign-flip (paired randomisation) p-value of integer differences.

    Under the null hypothesis each difference is as likely negated, so with T = sum(d),
    p = P(|sum eps_i d_i| >= |T|) over independent fair signs eps_i. Used with one
    difference per image (an operator's successes minus the baseline's, summed over the
    seeds), it treats the images, not the (seed, image) pairs, as the independent units;
    with one problem an image it is the exact McNemar test. The sum's distribution is built by
    convolution (exact up to float64 rounding: integer differences keep the support to
    sum |d_i| + 1 values).
    """
    magnitudes = [abs(int(d)) for d in differences if d]
    if not magnitudes:
        return 1.0
    total = sum(magnitudes)
    # probability[k] = P(sum eps_i |d_i| == k - total)
    probability = np.zeros(2 * total + 1)
    probability[total] = 1.0
    for magnitude in magnitudes:
        probability = 0.5 * (np.roll(probability, magnitude) + np.roll(probability, -magnitude))
    observed = abs(int(sum(int(d) for d in differences)))
    sums = np.arange(-total, total + 1)
    # Sums equal to |T| up to rounding count as extreme: integers, so compare exactly.
    return float(min(1.0, probability[np.abs(sums) >= observed].sum()))
