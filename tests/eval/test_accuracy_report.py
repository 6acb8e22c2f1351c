"""The accuracy study's statistics: McNemar on paired outcomes, Holm's correction, the grid it runs."""

from __future__ import annotations

import pytest

from vlash.experiments.accuracy_report import comparisons, holm, mcnemar
from vlash.experiments.accuracy_study import StudyConfig, grid, horizon_of, split_mode


def test_mcnemar_counts_discordant_pairs_and_matches_the_exact_binomial():
    a = [1] * 10 + [0] * 2 + [1] * 5
    b = [0] * 10 + [1] * 2 + [1] * 5
    test = mcnemar(a, b)
    assert (test["only_first"], test["only_second"]) == (10, 2)
    assert test["p"] == pytest.approx(0.0386, abs=1e-4)  # 2 * P(X <= 2), X ~ Bin(12, 0.5) = 158/4096
    assert mcnemar([1, 0, 1], [1, 0, 1])["p"] == 1.0  # no discordant pair
    with pytest.raises(ValueError, match="paired"):
        mcnemar([1, 0], [1])


def test_holm_adjusts_in_input_order_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.3, 0.9]) == pytest.approx([0.6, 0.9])


def _record(mode, estimator, outcomes, delay=2, k=2, seeds=None):
    n = len(outcomes)
    return {"checkpoint": "p", "mode": mode, "estimator": estimator, "delay": delay, "execution_horizon": k,
            "outcomes": outcomes, "seeds": seeds or list(range(n)), "episodes": n,
            "success_rate": sum(outcomes) / n, "success_ci95": [0, 1]}


def test_comparisons_pair_vlash_with_naive_of_the_same_cell_only():
    naive = _record("naive", "none", [0, 0, 1, 1])
    oracle = _record("vlash", "oracle", [1, 1, 1, 0])
    other_k = _record("vlash", "target", [1, 1, 1, 1], k=4)  # no naive at K = 4: not compared
    (row,) = comparisons([naive, oracle, other_k])
    assert (row["variant"], row["only_first"], row["only_second"]) == ("vlash·oracle", 2, 1)
    with pytest.raises(ValueError, match="not paired"):
        comparisons([naive, _record("vlash", "oracle", [1, 1, 1, 0], seeds=[9, 8, 7, 6])])


def test_the_planned_grid():
    config = StudyConfig()
    assert (config.episodes, config.delays, config.task) == (200, (0, 1, 2, 3, 4), "detour")
    assert split_mode("vlash:oracle") == ("vlash", "oracle") and split_mode("naive") == ("naive", None)
    assert [horizon_of("max", d) for d in range(5)] == [1, 1, 2, 3, 4]
    cells = grid(config, "ckpt")
    assert {c.mode for c in cells if c.delay == 0} == {"sync"}  # Δ = 0: one schedule for every mode
    assert len(cells) == 2 + 4 * 2 * 5 - 5  # Δ=0: sync at K 1 and 4; Δ 1..3: 2 K x 5 modes; Δ=4: K=4 once
    assert all(c.seeds == cells[0].seeds and len(c.seeds) == 200 for c in cells)  # paired
    assert {c.estimator for c in cells if c.mode == "vlash"} == {"target", "model", "oracle"}


def _partial_study():
    from dataclasses import asdict

    config = asdict(StudyConfig())
    label = "diffusion offsets Δmax=4"
    naive = {**_record("naive", "none", [0] * 150 + [1] * 50, delay=4, k=4), "checkpoint": label,
             "discontinuity": 0.1}
    oracle = {**_record("vlash", "oracle", [1] * 150 + [1] * 50, delay=4, k=4), "checkpoint": label,
              "discontinuity": 0.05}
    run = {"steps": 6000, "seconds": 600.0, "steps_per_s": 10.0, "final_loss": 0.01,
           "gate": {"success_rate": 0.9, "episodes": 100, "passed": True}}
    return {"config": config, "records": [naive, oracle], "training": {label: {"runs": [run]}},
            "wall_s": {"total": 7200.0, "cells_s": 3600.0}}


def test_results_section_says_partial_and_reports_the_primary_test():
    from vlash.experiments.accuracy_report import accuracy_values

    values = accuracy_values(_partial_study(), "img/a.png")
    assert values["accuracy_study"] and not values["accuracy_complete"]
    assert values["accuracy_cells"] == "2 of 148"  # 4 policies x 37 cells
    assert "vlash·oracle 100.0 % vs naive 25.0 %" in values["accuracy_primary"]
    assert "won alone 150 vs 0" in values["accuracy_primary"] and "vlash better" in values["accuracy_primary"]
    assert "better in 1, worse in 0" in values["accuracy_tally"]
    assert "90 % of 100" in values["accuracy_training_table"]
    assert accuracy_values(None, None) == {"accuracy_study": False}


def test_only_section_iv_b_of_an_existing_results_file_is_rendered_again(tmp_path):
    from vlash.experiments.results import update_accuracy_section

    results = tmp_path / "RESULTS.md"
    before = "# Results\n\n## (iv) Learned\n\nold study text\n\n## (v) Runtime figures\n\nbench text\n"
    results.write_text(before)
    study = _partial_study()
    update_accuracy_section(results, study, tmp_path / "img")  # no (iv b) yet: it goes before (v)
    first = results.read_text()
    assert first.index("## (iv) Learned") < first.index("## (iv b)") < first.index("## (v) Runtime")
    assert "old study text" in first and "bench text" in first and "**Partial: 2 of 148" in first
    assert "vlash·oracle 100.0 % vs naive 25.0 %" in first
    assert (tmp_path / "img" / "accuracy_study.png").stat().st_size > 0
    study["records"] = study["records"][:1]  # a later report replaces the section, nothing else
    update_accuracy_section(results, study, tmp_path / "img")
    second = results.read_text()
    assert second.count("## (iv b)") == 1 and "**Partial: 1 of 148" in second and "bench text" in second
    assert second.split("## (iv b)")[0] == first.split("## (iv b)")[0]
