"""The progress bar every long command shares (deattack.cli.common.ProgressBar)."""

from __future__ import annotations

from deattack.cli.common import ProgressBar


def test_a_bar_never_shown_prints_nothing(capsys):
    """A command that fails before work, or finds it all done, draws no empty
    "0problem [00:00, ?problem/s]" line (issue 27 item 11)."""
    ProgressBar("queries").close()
    assert capsys.readouterr().err == ""


def test_the_bar_shows_the_callers_counts_rate_and_eta(capsys):
    """The total may shrink (problems that succeed early leave budget unspent); the rate
    and the ETA are the caller's, never tqdm's item rate."""
    bar = ProgressBar("queries", rate_unit="q", scale=True)
    bar.show(0, 4_000_000, rate=0.0, eta_s=None, details="0/10 problems, 0 fooled")
    bar.show(1_200_000, 3_500_000, rate=6_500.0, eta_s=354.0, details="3/10 problems, 2 fooled")
    bar.close()
    err = capsys.readouterr().err
    assert "0/4.00M queries, 0.00 q/s, 0/10 problems, 0 fooled, ETA ?" in err, err
    assert "1.20M/3.50M queries, 6.50k q/s, 3/10 problems, 2 fooled, ETA 05:54" in err, err
    assert "it/s" not in err and "queries/s" not in err, err


def test_an_unscaled_bar_with_a_description(capsys):
    bar = ProgressBar("img", desc="adaptive")
    bar.show(3, 12, rate=0.25, eta_s=36.0, details="cells 1/4")
    bar.close()
    assert "adaptive:  25%|" in capsys.readouterr().err
