"""The operator study (issue 7): configs/operators.py expands to the planned cells, sweep
variants behave as documented, and the report's statistics equal scipy's and a direct
recomputation from a hand-made store."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from deattack import config_files
from deattack.attack import AttackConfig
from deattack.reports import operator_report
from deattack.sweep.grid import ImageSet, SweepConfig, expand
from deattack.sweep.store import Store

SPEC = "configs/operators.py"


# --- configs and variants -----------------------------------------------------------------

@pytest.mark.parametrize("variant, cells", [
    # 6 mutations x 3 crossovers + 3 adaptive + 2 pixel operators + 2 with corner init +
    # random search + CMA-ES = 27 at 1 and 3 px, plus the 1-pixel exhaustive scan.
    ("lenet-all-operators", 27 * 2 + 1),
    ("smoke", 27 * 2 + 1),
    # 6 operators: seeds 1, 2 at 1 and 3 px, seeds 0-2 at 5 px.
    ("lenet-six-operators", 6 * (2 + 2 + 3)),
    ("lenet-six-operators-targeted", 6 * 3),
    ("lenet-six-operators-targeted-34-images", 6 * 3),
    ("resnet20-six-operators", 6 * 3),
    # lenet, resnet20 x 1/3/5 px x both modes x 6 operators x 3 seeds
    ("lenet-resnet20-six-operators-700-images", 2 * 3 * 2 * 6 * 3),
    ("lenet-six-operators-but-three", 4 * (2 + 2 + 3)),  # the follow-up's 6 less rand/1 and the default
    ("lenet-six-operators-targeted-but-three", 4 * 3),
    ("lenet-default-rand1-best1exp", 3 * 3 * 3),  # 3 operators x 1/3/5 px x seeds 0-2
    ("lenet-best1exp", 3 * 3),
    ("lenet-default-rand1-best1exp-targeted", 3 * 3 * 3),
    ("resnet20-default-rand1", 2),
    ("lenet-eight-searches-34-images", 8),  # rand/1, 3 pixel variants, SHADE, CMA-ES, random, corner scan at 1 px
])
def test_operators_config_expands_to_the_planned_cells(variant, cells):
    config = config_files.load(f"{SPEC}:{variant}")
    expanded = expand(config)
    assert len(expanded) == cells
    assert len({c.cell_id for c in expanded}) == cells
    for cell in expanded:
        assert cell.attack.max_queries == (8192 if cell.attack.search == "exhaustive" else 400 * 101) \
            or variant == "smoke"
        assert cell.attack.differential_weight == 0.5


def test_screen_covers_every_registered_operator_once():
    from deattack.de import MUTATIONS

    cells = expand(config_files.load(f"{SPEC}:screen"))
    one_pixel = [c.attack for c in cells if c.attack.pixels == 1]
    assert {a.mutation for a in one_pixel if a.search == "de"} == set(MUTATIONS)
    assert sum(a.search == "exhaustive" for a in one_pixel) == 1
    assert sum(a.search == "cma-es" for a in one_pixel) == 1
    assert {c.attack.search for c in cells if c.attack.pixels == 3} == {"de", "cma-es"}
    operators = [(a.mutation, a.crossover, a.adaptation, a.init) for a in one_pixel if a.search == "de"]
    assert len(set(operators)) == len(operators) == 26
    assert sum(a.init == "corners" for a in one_pixel) == 2


def test_followup_reuses_the_screens_seed_0_cells():
    screen = {c.cell_id for c in expand(config_files.load(f"{SPEC}:screen"))}
    followup = expand(config_files.load(f"{SPEC}:followup-lenet"))
    reused = [c for c in followup if c.cell_id in screen]
    assert reused == []  # the follow-up never reruns them ...
    seeds = {(c.attack.pixels, c.attack.seed) for c in followup}
    assert seeds == {(1, 1), (1, 2), (3, 1), (3, 2), (5, 0), (5, 1), (5, 2)}
    # ... because seed 0 at 1 and 3 px has the screen's cell ids exactly.
    config = config_files.load(f"{SPEC}:followup-lenet")
    with_seed_0 = dataclasses.replace(config, variants=tuple(
        tuple(p for p in v if p[0] not in ("seed", "pixels")) for v in config.variants[::3]))
    ids = {c.cell_id for c in expand(with_seed_0) if c.attack.seed == 0 and c.attack.pixels in (1, 3)}
    assert len(ids) == 12 and ids <= screen


def test_head_to_head_is_the_default_against_the_paper_and_the_runner_up_on_the_studys_own_cells():
    from deattack.attack import paper_config, recommended_config

    screen = {c.cell_id for c in expand(config_files.load(f"{SPEC}:screen"))}
    resnet = {c.cell_id for c in expand(config_files.load(f"{SPEC}:followup-resnet20"))}
    lenet = expand(config_files.load(f"{SPEC}:head-to-head-lenet"))
    assert {c.cell_id for c in lenet if c.attack.pixels in (1, 3) and c.attack.seed == 0} <= screen
    followup = expand(config_files.load(f"{SPEC}:followup-lenet"))
    # The runner-up best/1/exp is not among the follow-up's operators (14th in the screen).
    assert {c.cell_id for c in lenet if (c.attack.pixels == 5 or c.attack.seed > 0) and c.attack.mutation != "best/1"} \
        <= {c.cell_id for c in followup}
    runner_up = expand(config_files.load(f"{SPEC}:head-to-head-lenet-runner-up"))
    assert {c.cell_id for c in runner_up} == {c.cell_id for c in lenet if c.attack.mutation == "best/1"}
    targeted = expand(config_files.load(f"{SPEC}:head-to-head-lenet-targeted"))
    assert {c.cell_id for c in targeted if c.attack.pixels == 1 and c.attack.mutation != "best/1"} <= \
        {c.cell_id for c in expand(config_files.load(f"{SPEC}:followup-lenet-targeted"))}
    cells = expand(config_files.load(f"{SPEC}:head-to-head-resnet20"))
    assert {c.cell_id for c in cells} <= resnet
    assert {c.attack.mutation for c in lenet} == {c.attack.mutation for c in targeted} == \
        {"rand/1", "rand/1-snap-local", "best/1"}
    assert {c.attack.mutation for c in cells} == {"rand/1", "rand/1-snap-local"}
    runner_up = paper_config(1, mutation="best/1", crossover="exp")
    for cell in lenet + targeted + cells:
        expected = {"rand/1": paper_config(1), "best/1": runner_up}.get(cell.attack.mutation, recommended_config(1))
        operator = ("mutation", "crossover", "adaptation", "init", "differential_weight", "max_queries")
        assert {k: getattr(cell.attack, k) for k in operator} == {k: getattr(expected, k) for k in operator}


def test_the_rest_and_the_head_to_head_make_up_the_follow_up_exactly():
    def ids(variant):
        return {c.cell_id for c in expand(config_files.load(f"{SPEC}:{variant}"))}

    for followup, rest, head_to_head in (
            ("lenet-six-operators", "followup-lenet-rest", "head-to-head-lenet"),
            ("lenet-six-operators-targeted", "followup-lenet-targeted-rest", "head-to-head-lenet-targeted")):
        assert not ids(rest) & ids(head_to_head)
        assert ids(rest) <= ids(followup) <= ids(rest) | ids(head_to_head)


@pytest.mark.parametrize("pixels", [1, 3, 5])
def test_the_25_image_targeted_stores_are_reproduced_by_their_documented_command(pixels):
    """docs/results/operators_screen_25 names this command; its committed stores must be
    the same sweep (they resume) with the same cells."""
    import sqlite3

    from deattack.overrides import apply_overrides
    from deattack.sweep.store import canonical_json

    config = apply_overrides(config_files.load(f"{SPEC}:followup-lenet-targeted-34"),
                             ["images.count=34", "seeds=0", f"pixels={pixels}", "attack.forward=full"])
    store = sqlite3.connect(f"docs/results/operator_runs/operators-targeted-{pixels}px-34.sqlite")
    try:
        assert {row[0] for row in store.execute("select cell_id from cells")} == {c.cell_id for c in expand(config)}
        (key,) = store.execute("select value from meta where key = 'sweep_key'").fetchone()
    finally:
        store.close()
    assert canonical_json(json.loads(key)) == canonical_json(config.key())


BASE = SweepConfig(victims=("a",), pixels=(1, 3), modes=("untargeted",), seeds=(0, 1), images=ImageSet(count=4))


def test_variants_replace_the_operator_product_and_restrict_grid_values():
    config = dataclasses.replace(BASE, variants=(
        (("mutation", "best/1"), ("crossover", "bin")),
        (("search", "exhaustive"), ("pixels", 1)),
        (("mutation", "random"), ("seed", 1)),
    ))
    got = [(c.attack.pixels, c.attack.seed, c.attack.mutation, c.attack.crossover, c.attack.search)
           for c in expand(config)]
    assert got == [
        (1, 0, "best/1", "bin", "de"), (1, 1, "best/1", "bin", "de"),
        (1, 0, "rand/1", "none", "exhaustive"), (1, 1, "rand/1", "none", "exhaustive"),
        (1, 1, "random", "none", "de"),
        (3, 0, "best/1", "bin", "de"), (3, 1, "best/1", "bin", "de"),
        (3, 1, "random", "none", "de"),
    ]
    assert config.key()["variants"] and "variants" not in BASE.key()


@pytest.mark.parametrize("variants, message", [
    (((("mutation", "nope"),),), "mutation"),
    (((("colour", "red"),),), "AttackConfig field"),
    (((("pixels", 5),),), "no cells"),
    (((("mutation", "best/1"),), (("mutation", "best/1"),)), "repeats"),
    (((("mutation", "best/1"), ("mutation", "rand/2")),), "twice"),
    (((("search", "exhaustive"),),), "one pixel"),  # at pixels 3 without a restriction
])
def test_bad_variants_name_the_problem(variants, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(BASE, variants=variants)


def test_restricted_variants_drop_out_of_a_narrower_grid():
    from deattack.overrides import apply_overrides

    config = apply_overrides(config_files.load(f"{SPEC}:screen"), ["pixels=3"])
    assert len(expand(config)) == 27  # the 1-pixel exhaustive scan has no cell at 3 px


def test_variants_exclude_a_grid_of_operators():
    with pytest.raises(ValueError, match="mutations"):
        dataclasses.replace(BASE, mutations=("rand/1", "best/1"), variants=((("crossover", "bin"),),))


# --- statistics against scipy ---------------------------------------------------------------

@pytest.mark.parametrize("successes, trials", [(0, 10), (3, 10), (10, 10), (47, 74), (1, 200), (199, 200)])
def test_wilson_interval_matches_scipy(successes, trials):
    expected = scipy.stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    np.testing.assert_allclose(operator_report.wilson_interval(successes, trials),
                               (expected.low, expected.high), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("b, c", [(0, 0), (0, 5), (5, 0), (3, 7), (12, 30), (25, 25), (1, 60), (140, 95)])
def test_mcnemar_exact_matches_scipy_binomial_test(b, c):
    expected = 1.0 if b + c == 0 else scipy.stats.binomtest(b, b + c, 0.5).pvalue
    assert operator_report.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_anytime_success_counts_problems_solved_within_q():
    queries = [400, 400, 800, 40400]
    curve = operator_report.anytime_success(queries, attacked=8, budget=40400)
    assert curve.shape == (40401,)
    for q in (0, 399, 400, 799, 800, 40399, 40400):
        assert curve[q] == sum(x <= q for x in queries) / 8
    with pytest.raises(ValueError, match="successes"):
        operator_report.wilson_interval(5, 3)


# --- the report on a hand-made store ----------------------------------------------------------

def _store(path, outcomes):
    """A store with one cell per operator: outcomes {operator: (mutation, [(success, queries)] per
    image)} (no outcomes: the cell is registered, not run), lenet-like 1-pixel untargeted
    cells, population 10 x (4 + 1) = 50 queries."""
    with Store(path) as store:
        store.initialize({"name": "hand"}, {"name": "hand"})
        for position, (mutation, results) in enumerate(outcomes.items()):
            search = {"search": "exhaustive"} if mutation == "exhaustive" else {"mutation": mutation}
            attack = dataclasses.asdict(AttackConfig(population_size=10, max_generations=4, **search))
            cell_id = f"cell{position}"
            store.register_cell(cell_id, position, "lenet", "lenet", "sha", {}, {
                "victim": "lenet", "attack": attack,
                "images": dataclasses.asdict(ImageSet(count=len(results) or 1))}, 1)
            if not results:  # registered, not run yet
                continue
            records = [{"image_index": i, "target": -1, "true_label": 0, "success": s, "status":
                        "success" if s else "failed", "queries": q, "pixels": []} for i, (s, q) in enumerate(results)]
            store.commit_unit(cell_id, 0, len(results), list(range(len(results))), records, 0.0)


def test_ranking_is_by_the_paired_gain_over_the_baseline():
    """An operator run in one more, easy setting must not outrank one that gains more over
    rand/1 where it ran; the own-settings means are reported beside."""
    def row(op, rate, anytime, gain):
        return {"operator": op, "success_rate": rate, "anytime_mean": anytime, "paired_difference": gain}

    tables = {("lenet", 1, "untargeted", "-"): [row("a", 0.6, 0.5, 0.1), row("b", 0.5, 0.4, 0.0),
                                                row("c", 0.5, 0.45, 0.0), row("rand/1/none/constant", 0.5, 0.4, None)],
              ("lenet", 3, "untargeted", "-"): [row("a", 0.9, 0.8, 0.1), row("b", 0.8, 0.7, 0.0),
                                                row("c", 0.8, 0.7, 0.0), row("rand/1/none/constant", 0.8, 0.7, None)],
              ("lenet", 5, "untargeted", "-"): [row("b", 1.0, 0.9, 0.05), row("rand/1/none/constant", 0.95, 0.9, None),
                                                row("lonely", 1.0, 1.0, None)]}
    ranked = operator_report.ranking(tables)
    # c ties rand/1 on gain (0); rand/1's mean success over its settings (75 %) breaks the tie.
    assert [r["operator"] for r in ranked] == ["a", "b", "rand/1/none/constant", "c", "lonely"]
    by_op = {r["operator"]: r for r in ranked}
    assert by_op["a"]["mean_paired_gain"] == pytest.approx(0.1) and by_op["a"]["gain_settings"] == 2
    assert by_op["b"]["mean_paired_gain"] == pytest.approx(0.05 / 3) and by_op["b"]["settings"] == 3
    assert by_op["b"]["mean_success"] == pytest.approx((0.5 + 0.8 + 1.0) / 3)
    assert by_op["rand/1/none/constant"]["mean_paired_gain"] == 0.0
    assert by_op["lonely"]["mean_paired_gain"] is None  # no baseline beside it: last


def test_operator_report_numbers(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    baseline = [(bool(s), int(q)) for s, q in zip(rng.random(n) < 0.5, rng.integers(1, 6, n) * 10)]
    variant = [(bool(s), int(q)) for s, q in zip(rng.random(n) < 0.8, rng.integers(1, 6, n) * 10)]
    baseline = [(s, q if s else 50) for s, q in baseline]
    variant = [(s, q if s else 50) for s, q in variant]
    _store(tmp_path / "a.sqlite", {"rand/1": baseline, "best/1": variant})
    result = operator_report.build_operator_report([tmp_path / "a.sqlite", tmp_path / "a.sqlite"],
                                                   tmp_path / "out", command="CMD", note="best/1 wins here.")
    rows = {r["operator"]: r for r in result["tables"]["lenet, 1 px, untargeted"]}
    row = rows["best/1/none/constant"]
    successes = sum(s for s, _ in variant)
    assert row["n_problems"] == n and row["n_success"] == successes  # the repeated store counts once
    ci = scipy.stats.binomtest(successes, n).proportion_ci(method="wilson")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["median_queries_success"] == np.median([q for s, q in variant if s])
    b = sum(v[0] and not r[0] for v, r in zip(variant, baseline))
    c = sum(r[0] and not v[0] for v, r in zip(variant, baseline))
    assert (row["only_variant"], row["only_baseline"], row["pairs"]) == (b, c, n)
    assert row["mcnemar_p"] == pytest.approx(scipy.stats.binomtest(b, b + c, 0.5).pvalue)
    # Which solves an image first: unsolved = never, ties (same count, both unsolved) dropped.
    first = later = 0
    for (vs, vq), (bs, bq) in zip(variant, baseline):
        if vs and (not bs or vq < bq):
            first += 1
        elif bs and (not vs or bq < vq):
            later += 1
    assert (row["faster"], row["slower"]) == (first, later) and first + later < n
    assert row["sign_p"] == pytest.approx(scipy.stats.binomtest(first, first + later, 0.5).pvalue)
    # One seed: an image is one pair, so the per-image tests are McNemar's and the sign test.
    assert row["images_paired"] == n
    assert row["image_success_p"] == pytest.approx(row["mcnemar_p"], rel=1e-9)
    assert row["image_first_p"] == pytest.approx(row["sign_p"], rel=1e-9)
    # Anytime mean: the fraction solved within q, averaged over q = 0 .. 50.
    expected = np.mean([sum(s and q <= x for s, q in variant) / n for x in range(51)])
    assert row["anytime_mean"] == pytest.approx(expected)
    assert rows["rand/1/none/constant"]["mcnemar_p"] is None
    assert result["ranking"][0]["operator"] == "best/1/none/constant"
    markdown = (tmp_path / "out" / "operators.md").read_text()
    assert "CMD" in markdown and "| best/1/none/constant | 40 | 1 |" in markdown
    assert "## Conclusion\n\nbest/1 wins here." in markdown
    assert (tmp_path / "out" / "operators_anytime.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "operators.json").read_text())["ranking"] == result["ranking"]
    # Another baseline: every operator is paired against it instead (b and c swap here).
    other = operator_report.build_operator_report([tmp_path / "a.sqlite"], tmp_path / "other", figures=False,
                                                  baseline="best/1/none/constant")
    swapped = {r["operator"]: r for r in other["tables"]["lenet, 1 px, untargeted"]}
    assert (swapped["rand/1/none/constant"]["only_variant"], swapped["rand/1/none/constant"]["only_baseline"]) == (c, b)
    assert swapped["best/1/none/constant"]["mcnemar_p"] is None
    assert "vs best/1/none/constant: paired diff" in (tmp_path / "other" / "operators.md").read_text()


def test_an_operator_with_no_problems_yet_gets_no_interval_and_no_test(tmp_path):
    """A registered cell with no rows yet (a sweep in progress) is not "0-100 %, p = 1"."""
    _store(tmp_path / "a.sqlite", {"rand/1": [(True, 10), (False, 50)], "best/1": []})
    result = operator_report.build_operator_report([tmp_path / "a.sqlite"], tmp_path / "out", figures=False)
    row = {r["operator"]: r for r in result["tables"]["lenet, 1 px, untargeted"]}["best/1/none/constant"]
    assert row["n_problems"] == 0 and row["pairs"] == 0
    assert row["ci_low"] is row["ci_high"] is row["mcnemar_p"] is row["sign_p"] is row["paired_difference"] is None
    markdown = (tmp_path / "out" / "operators.md").read_text()
    assert "| best/1/none/constant (incomplete) | 0 | 0 | - | - | - |" in markdown
    line = next(line for line in markdown.splitlines() if line.startswith("| best/1/none/constant"))
    assert line.endswith("| no shared problems | - | - | - | - |")  # no McNemar p, speed, sign p, per-image p


def test_the_seeds_column_counts_seeds_with_results_not_registered_ones(tmp_path):
    """A 3-seed cell with only seed 0 run so far reads "1 seed", not 3 (sweep in progress)."""
    with Store(tmp_path / "s.sqlite") as store:
        store.initialize({"name": "hand"}, {"name": "hand"})
        for seed in (0, 1, 2):
            attack = dataclasses.asdict(AttackConfig(population_size=10, max_generations=4, seed=seed))
            store.register_cell(f"cell{seed}", seed, "lenet", "lenet", "sha", {}, {
                "victim": "lenet", "attack": attack, "images": dataclasses.asdict(ImageSet(count=2))}, 1)
        records = [{"image_index": i, "target": -1, "true_label": 0, "success": s, "status":
                    "success" if s else "failed", "queries": q, "pixels": []}
                   for i, (s, q) in enumerate([(True, 10), (False, 50)])]
        store.commit_unit("cell0", 0, 2, [0, 1], records, 0.0)
    result = operator_report.build_operator_report([tmp_path / "s.sqlite"], tmp_path / "out", figures=False)
    row, = result["tables"]["lenet, 1 px, untargeted"]
    assert (row["n_problems"], row["n_seeds"], row["complete"]) == (2, 1, False)
    assert "| rand/1/none/constant (incomplete) | 2 | 1 | 50.0% |" in (tmp_path / "out" / "operators.md").read_text()


def test_a_seed_half_run_is_left_out_not_pooled(tmp_path):
    """Seed 0 finished (2 images), seed 1 with 1 of its 2 chunks: pooling seed 1's first
    chunk would read the operator over other images than the baseline's seed 0, so its rows
    are left out and the cell is named under 'Incomplete cells' with its units."""
    def records(outcomes, start):
        return [{"image_index": start + i, "target": -1, "true_label": 0, "success": ok,
                 "status": "success" if ok else "failed", "queries": q, "pixels": []}
                for i, (ok, q) in enumerate(outcomes)]

    with Store(tmp_path / "s.sqlite") as store:
        store.initialize({"name": "hand"}, {"name": "hand"})
        for seed in (0, 1):
            attack = dataclasses.asdict(AttackConfig(population_size=10, max_generations=4, seed=seed))
            store.register_cell(f"cell{seed}", seed, "lenet", "lenet", "sha", {}, {
                "victim": "lenet", "attack": attack, "images": dataclasses.asdict(ImageSet(count=4))}, 2)
        store.commit_unit("cell0", 0, 2, [0, 1], records([(True, 10), (False, 50)], 0), 0.0)
        store.commit_unit("cell0", 1, 2, [2, 3], records([(False, 50), (False, 50)], 2), 0.0)
        store.commit_unit("cell1", 0, 2, [0, 1], records([(True, 10), (True, 20)], 0), 0.0)
    result = operator_report.build_operator_report([tmp_path / "s.sqlite"], tmp_path / "out", figures=False)
    row, = result["tables"]["lenet, 1 px, untargeted"]
    assert (row["n_problems"], row["n_seeds"], row["n_success"], row["complete"]) == (4, 1, 1, False)
    markdown = (tmp_path / "out" / "operators.md").read_text()
    assert "| rand/1/none/constant (incomplete) | 4 | 1 | 25.0% |" in markdown
    # cell1 is position 1 of 2-unit cells: its missing chunk 1 is unit 3
    assert "- lenet, 1 px, untargeted: rand/1/none/constant: seed 1 (1 of 2 units; to run: 3)" in markdown
    assert f"    deattack sweep CONFIG --store {tmp_path / 's.sqlite'} --units 3" in markdown


def test_every_operator_of_a_setting_is_read_over_the_same_query_range(tmp_path):
    """The scan's budget (8,192) exceeds this DE's (50): the DE curve stays flat after 50."""
    outcomes = {"rand/1": [(True, 20), (False, 50)], "exhaustive": [(True, 4000), (True, 9)]}
    _store(tmp_path / "s.sqlite", outcomes)
    result = operator_report.build_operator_report([tmp_path / "s.sqlite"], tmp_path / "out", figures=False)
    rows = {r["operator"]: r for r in result["tables"]["lenet, 1 px, untargeted"]}
    assert rows["rand/1/none/constant"]["anytime_mean"] == pytest.approx((8192 - 20 + 1) / 2 / 8193)
    assert rows["exhaustive-corners"]["anytime_mean"] == pytest.approx(((8192 - 9 + 1) + (8192 - 4000 + 1)) / 2 / 8193)
    assert rows["exhaustive-corners"]["success_at"][2000] == 0.5
    assert rows["exhaustive-corners"]["only_variant"] == 1 and rows["exhaustive-corners"]["only_baseline"] == 0


@given(st.lists(st.integers(-3, 3), min_size=0, max_size=10))
def test_sign_flip_exact_matches_enumerating_every_sign(differences):
    import itertools

    observed = abs(sum(differences))
    sums = [abs(sum(sign * d for sign, d in zip(signs, differences)))
            for signs in itertools.product((-1, 1), repeat=len(differences))]
    expected = sum(total >= observed for total in sums) / len(sums)
    assert operator_report.sign_flip_exact(differences) == pytest.approx(expected, rel=1e-12)


@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 20))
def test_sign_flip_of_single_pairs_is_the_exact_mcnemar_test(b, c, ties):
    """Differences of +1 (b), -1 (c) and 0: the sign-flip test is the binomial test of b vs c."""
    expected = 1.0 if b + c == 0 else scipy.stats.binomtest(b, b + c, 0.5).pvalue
    assert operator_report.sign_flip_exact([1] * b + [-1] * c + [0] * ties) == pytest.approx(
        expected, rel=1e-9, abs=1e-15)


def test_per_image_p_treats_an_image_and_not_its_seeds_as_the_unit():
    """Two images the variant solves at all three seeds and the baseline at none: six
    discordant pairs (McNemar p = 2 / 2^6) but only two images (p = 2 / 2^2 = 0.5)."""
    def group(outcomes):
        records = {(seed, image, -1): {"success": ok, "queries": 10 if ok else 50}
                   for (seed, image), ok in outcomes.items()}
        return {"records": records, "budget": 50, "complete": True}

    problems = [(seed, image) for seed in range(3) for image in (7, 9)]
    row = operator_report.group_stats(group({k: True for k in problems}), group({k: False for k in problems}))
    assert (row["only_variant"], row["only_baseline"], row["images_paired"]) == (6, 0, 2)
    assert row["mcnemar_p"] == pytest.approx(2 / 64) and row["sign_p"] == pytest.approx(2 / 64)
    assert row["image_success_p"] == pytest.approx(0.5) and row["image_first_p"] == pytest.approx(0.5)


def test_the_studys_variant_names_still_give_the_same_sweeps():
    """The stores under docs/results record the commands the study ran, with the names its
    variants had then: each still gives the sweep its new name gives."""
    from configs.operators import STUDY_NAMES, get_config

    assert "screen" in STUDY_NAMES and "head-to-head-lenet" in STUDY_NAMES
    for old, new in STUDY_NAMES.items():
        assert config_files.load(f"{SPEC}:{old}") == config_files.load(f"{SPEC}:{new}") == get_config(new)
