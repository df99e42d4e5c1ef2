"""`deattack bench --json` on a tiny budget: the JSON object's shape, its ratios
recomputed from its own measurements, and no torch on the scipy-only path."""

from __future__ import annotations

import json
import sys

import pytest

from deattack.cli.bench import resolve_peers
from deattack.cli.main import main
from tests.support import requires_cifar10

REQUIRED = ("device", "model", "forward_img_per_s", "attack_queries_per_s", "ratio_to_forward",
            "speedup_vs_scipy", "scipy_success_rate", "success_rate", "comparison")


@requires_cifar10
def test_bench_json_shape_and_ratios(capsys):
    torch_before = "torch" in sys.modules
    code = main(["bench", "--model", "lenet", "--images", "1", "--max-gens", "1", "--popsize", "20",
                 "--slots", "1", "--batch-sizes", "20", "--forward-seconds", "0.3", "--peers", "scipy", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(key in report for key in REQUIRED), sorted(set(REQUIRED) - set(report))
    assert "speedup_vs_torchattacks" not in report and "speedup_vs_art" not in report
    assert report["model"] == "lenet" and report["peers"] == ["scipy"] and report["quick"] is False
    ours, scipy = report["comparison"]["deattack"], report["comparison"]["scipy"]
    # One image, 20 members, 1 generation: 20 or 40 queries on each side.
    assert ours["queries_total"] == report["attack_queries"] and report["attack_queries"] in (20, 40)
    assert scipy["queries_total"] in (20, 40)
    assert report["ratio_to_forward"] == pytest.approx(
        report["attack_queries_per_s"] / report["forward_img_per_s"], abs=2e-3)
    assert report["speedup_vs_scipy"] == pytest.approx(
        scipy["wall_per_image_s"] / ours["wall_per_image_s"], rel=1e-2)
    assert report["host_peak_rss_mib"] > 0
    # The forward scan includes the attack's own batch (here the whole population of 20).
    assert report["microbatch"] == 20
    assert report["forward_img_per_s_at_attack_batch"] == report["forward_img_per_s_by_batch"]["20"] > 0
    if not torch_before:
        assert "torch" not in sys.modules  # peers never load torch unless asked


def test_peer_selection():
    assert resolve_peers("none") == []
    assert "scipy" in resolve_peers("auto")
    assert resolve_peers("scipy") == ["scipy"]
    with pytest.raises(ValueError, match="unknown peer 'foolbox'"):
        resolve_peers("scipy,foolbox")


@requires_cifar10
def test_peers_on_the_first_images_only_and_profile(capsys, tmp_path):
    code = main(["bench", "--model", "lenet", "--images", "2", "--slots", "2", "--max-gens", "1", "--popsize", "20",
                 "--batch-sizes", "20", "--forward-seconds", "0.2", "--peers", "scipy", "--peer-images", "1",
                 "--microbatch", "10", "--profile", str(tmp_path / "trace"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["peer_images"] == 1 and report["microbatch"] == 10
    ours, everything, scipy = (report["comparison"][k] for k in ("deattack", "deattack_all_images", "scipy"))
    assert ours["images"] == scipy["images"] == 1 and everything["images"] == 2
    assert everything["queries_total"] == report["attack_queries"]
    # deattack's wall per image is its whole run's over all its images, on either view.
    assert ours["wall_per_image_s"] == pytest.approx(everything["wall_per_image_s"], rel=1e-3)
    assert report["speedup_vs_scipy"] == pytest.approx(scipy["wall_per_image_s"] / ours["wall_per_image_s"], rel=1e-2)
    assert any(path.suffix == ".pb" for path in (tmp_path / "trace").rglob("*"))  # the timed run's trace
