"""The accuracy study's statistics, tables and figure (from ``accuracy_study.json``).

Success rates carry Wilson 95 % intervals (computed per cell by the evaluation); each vlash variant
is compared with naive at the same (policy, Δ, K) by McNemar's exact test on the paired seeds
(scipy's binomial test on the discordant pairs), with Holm's correction over the whole family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlash.experiments.markdown import table

PAPER_KINETIX = {"delay": 4, "vlash": 81.7, "naive": 51.2}  # arXiv 2512.01031, Kinetix, Δ = 4, % success
MODE_LABELS = {"sync": "sync", "naive": "naive", "target": "vlash·target", "model": "vlash·model",
               "oracle": "vlash·oracle"}


def mode_label(record: dict[str, Any]) -> str:
    """sync, naive or vlash·<estimator>."""
    return MODE_LABELS.get(record["estimator"], f"vlash·{record['estimator']}") if record["mode"] == "vlash" \
        else record["mode"]


def mcnemar(a: list[int], b: list[int]) -> dict[str, Any]:
    """McNemar's exact test of paired outcomes: ``a`` wins alone, ``b`` wins alone, two-sided p."""
    from scipy.stats import binomtest

    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length ({len(a)} vs {len(b)})")
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"only_first": only_a, "only_second": only_b, "p": p}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def comparisons(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every vlash variant against naive at the same checkpoint, Δ and K (paired seeds), Holm-adjusted."""
    naive = {(r["checkpoint"], r["delay"], r["execution_horizon"]): r for r in records if r["mode"] == "naive"}
    rows = []
    for r in records:
        base = naive.get((r["checkpoint"], r["delay"], r["execution_horizon"]))
        if r["mode"] != "vlash" or base is None:
            continue
        if r["seeds"] != base["seeds"]:
            raise ValueError(f"{r['checkpoint']} Δ={r['delay']}: vlash and naive ran different seeds (not paired)")
        test = mcnemar(r["outcomes"], base["outcomes"])
        rows.append({"checkpoint": r["checkpoint"], "delay": r["delay"], "horizon": r["execution_horizon"],
                     "variant": mode_label(r), "vlash": r["success_rate"], "naive": base["success_rate"],
                     "n": r["episodes"], **test})
    for row, p in zip(rows, holm([row["p"] for row in rows]), strict=True):
        row["p_holm"] = p
    return rows


def _pct(r: dict[str, Any] | None) -> str:
    if r is None:
        return ""
    lo, hi = r["success_ci95"]
    return f"{100 * r['success_rate']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def success_tables(study: dict[str, Any]) -> str:
    """Per checkpoint and K rule: rows Δ, columns mode; cells success % [Wilson 95 %]; n per cell stated."""
    records = study["records"]
    out = []
    modes = list(dict.fromkeys(mode_label(r) for r in records))
    for ckpt in dict.fromkeys(r["checkpoint"] for r in records):
        for rule in study["config"]["horizons"]:
            rows = []
            for delay in study["config"]["delays"]:
                k = max(delay, 1) if rule == "max" else int(rule)
                cells = {mode_label(r): r for r in records
                         if r["checkpoint"] == ckpt and r["delay"] == delay and r["execution_horizon"] == k}
                if cells:
                    rows.append([str(delay), str(k), *(_pct(cells.get(m)) for m in modes)])
            n = next(r["episodes"] for r in records if r["checkpoint"] == ckpt)
            rule_text = "K = max(Δ, 1)" if rule == "max" else f"K = {rule}"
            out += [f"#### {ckpt}, {rule_text} (n = {n} paired episodes per cell)", "",
                    *table(["Δ", "K", *modes], rows), ""]
    return "\n".join(out)


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """McNemar p-values of every vlash variant vs naive."""
    body = [[r["checkpoint"], str(r["delay"]), str(r["horizon"]), r["variant"], f"{100 * r['vlash']:.1f}",
             f"{100 * r['naive']:.1f}", f"{r['only_first']} / {r['only_second']}", f"{r['p']:.3g}",
             f"{r['p_holm']:.3g}"] for r in rows]
    return "\n".join(table(["policy", "Δ", "K", "variant", "vlash %", "naive %", "wins alone (vlash / naive)", "p", "p (Holm)"],
                           body))


def side_change_table(study: dict[str, Any]) -> str:
    """Switch jump and the fraction of episodes that changed strategy mid-way, at the largest Δ, K = max(Δ, 1)."""
    records = study["records"]
    delay = max(study["config"]["delays"])
    rows = [[r["checkpoint"], mode_label(r), f"{r['discontinuity']:.3f}",
             f"{100 * r['strategy_change_rate']:.1f}" if "strategy_change_rate" in r else "–"]
            for r in records if r["delay"] == delay and r["execution_horizon"] == max(delay, 1)]
    return "\n".join(table(["policy", "mode", "switch jump (rad)", "changed side mid-way %"], rows))


def plot_study(study: dict[str, Any], path: Path) -> None:
    """Fig. 6 style: success vs Δ per mode with Wilson bands, one panel per policy (K = max(Δ, 1)), paper beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in study["records"] if r["execution_horizon"] == max(r["delay"], 1)]
    ckpts = list(dict.fromkeys(r["checkpoint"] for r in records))
    modes = list(dict.fromkeys(mode_label(r) for r in records))
    fig, axes = plt.subplots(1, len(ckpts) + 1, figsize=(3.6 * (len(ckpts) + 1), 3.6), squeeze=False, sharey=True)
    width = 0.08  # modes side by side at each Δ, so equal curves stay visible
    for ax, ckpt in zip(axes[0], ckpts, strict=False):
        sync0 = next((r for r in records if r["checkpoint"] == ckpt and r["mode"] == "sync" and r["delay"] == 0), None)
        for i, mode in enumerate(modes):
            rows = sorted((r for r in records if r["checkpoint"] == ckpt and mode_label(r) == mode),
                          key=lambda r: r["delay"])
            if mode != "sync" and sync0 is not None:  # every mode is sync at Δ = 0
                rows = [sync0, *rows]
            if not rows:
                continue
            x = [r["delay"] + (i - (len(modes) - 1) / 2) * width for r in rows]
            y = [100 * r["success_rate"] for r in rows]
            err = [[100 * (r["success_rate"] - r["success_ci95"][0]) for r in rows],
                   [100 * (r["success_ci95"][1] - r["success_rate"]) for r in rows]]
            ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, label=mode)
        n = next(r["episodes"] for r in records if r["checkpoint"] == ckpt)
        ax.set_title(f"{ckpt}\n(n = {n} per point, 95 % Wilson)", fontsize=9)
        ax.set_xlabel("delay Δ (control steps)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"success % on {study['config']['task']}")
    if axes[0][0].get_legend_handles_labels()[0]:  # nothing to label before the first cell has run
        axes[0][0].legend(fontsize=7, loc="lower left")
    paper = axes[0][-1]
    paper.bar([0, 1], [PAPER_KINETIX["naive"], PAPER_KINETIX["vlash"]], color=["tab:orange", "tab:red"])
    paper.set_xticks([0, 1], ["naive", "VLASH"])
    paper.set_title(f"paper: Kinetix, Δ = {PAPER_KINETIX['delay']}\n(arXiv 2512.01031)", fontsize=9)
    paper.grid(alpha=0.3, axis="y")
    for ax in axes[0]:
        ax.set_ylim(-5, 105)
    fig.suptitle("Success vs delay, K = max(Δ, 1): sync, naive async, vlash with three future-state estimators",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _primary(study: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The plan's one primary test: Diffusion with offsets, K = max(Δ, 1), Δ = 4, vlash·oracle vs naive."""
    policy = next((p for p in study["config"]["policies"] if p["kind"] == "diffusion" and p["max_delay"] > 0), None)
    if policy is None:
        return "not in this configuration"
    label = f"diffusion offsets Δmax={policy['max_delay']}"
    delay = max(study["config"]["delays"])
    row = next((r for r in rows if r["checkpoint"] == label and r["delay"] == delay and r["horizon"] == max(delay, 1)
                and r["variant"] == "vlash·oracle"), None)
    if row is None:
        return "not run yet"
    verdict = ("vlash better" if row["only_first"] > row["only_second"] else "naive better") if row["p"] < 0.05 \
        else "no significant difference"
    return (f"{label}, Δ={delay}, K={max(delay, 1)}: vlash·oracle {100 * row['vlash']:.1f} % vs naive "
            f"{100 * row['naive']:.1f} % (n = {row['n']} paired; won alone {row['only_first']} vs "
            f"{row['only_second']}; McNemar p = {row['p']:.3g}): **{verdict}** at α = 0.05")


def _tally(rows: list[dict[str, Any]]) -> str:
    """Per vlash variant: cells where it is better / worse than naive after Holm's correction, of all compared."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        better = sum(1 for r in mine if r["p_holm"] < 0.05 and r["only_first"] > r["only_second"])
        worse = sum(1 for r in mine if r["p_holm"] < 0.05 and r["only_first"] < r["only_second"])
        out.append(f"{variant}: better in {better}, worse in {worse}, no significant difference in "
                   f"{len(mine) - better - worse} of {len(mine)} (policy, Δ, K) cells")
    return "; ".join(out) if out else "no comparisons yet"


def training_table(study: dict[str, Any]) -> str:
    rows = []
    for label, info in study["training"].items():
        for i, run in enumerate(info["runs"]):
            gate = run["gate"]
            rows.append([label + (" (trained on)" if i else ""), str(run["steps"]), f"{run['seconds'] / 60:.1f}",
                         f"{run['steps_per_s']:.2f}", f"{run['final_loss']:.4f}",
                         f"{100 * gate['success_rate']:.0f} % of {gate['episodes']}",
                         "passed" if gate["passed"] else "**below**"])
    return "\n".join(table(["policy", "steps", "minutes", "steps/s", "final loss", "sync Δ=0 gate", "≥ 85 %"], rows))


def accuracy_values(study: dict[str, Any] | None, image: str | None) -> dict[str, Any]:
    """The accuracy-study placeholders of ``results_template.md``."""
    if not study:
        return {"accuracy_study": False}
    from vlash.experiments.accuracy_study import StudyConfig, grid

    config = study["config"]
    shape = StudyConfig(**{k: config[k] for k in ("task", "delays", "horizons", "modes", "episodes", "eval_seed")})
    planned = len(config["policies"]) * len(grid(shape, "-"))
    rows = comparisons(study["records"])
    wall = study["wall_s"]
    return {
        "accuracy_study": True,
        "accuracy_complete": len(study["records"]) >= planned,
        "accuracy_cells": f"{len(study['records'])} of {planned}",
        "accuracy_training_table": training_table(study),
        "accuracy_tables": success_tables(study),
        "accuracy_comparisons": comparison_table(rows),
        "accuracy_side_changes": side_change_table(study),
        "accuracy_figure": f"![accuracy study]({image})" if image else "",
        "accuracy_primary": _primary(study, rows),
        "accuracy_tally": _tally(rows),
        "accuracy_wall_h": f"{wall['total'] / 3600:.1f}",
        "accuracy_cells_h": f"{wall['cells_s'] / 3600:.1f}",
        "accuracy_episodes": str(config["episodes"]),
    }
