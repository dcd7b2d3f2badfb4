"""``docs/RESULTS.md`` rendered from the committed metrics, so every number in it comes from one run.

    python -m babelfuse.evaluation.results_doc            # rewrite docs/RESULTS.md
    python -m babelfuse.evaluation.results_doc --check    # exit 1 if it differs from the metrics

Reads ``metrics/eval.json`` and ``metrics/eval_detail.json`` (required), ``metrics/ceiling.json`` and
``benchmarks/results/fusion.json`` (when present). ``tests/evaluation/test_results_doc.py`` checks
that the committed file equals this rendering of the committed metrics. The "worse than hoped"
section is derived from the numbers (paired CIs), not written by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from babelfuse import paths
from babelfuse.errors import BabelfuseError, read_json, user_errors_exit

DOC = Path("docs/RESULTS.md")
FUSION_BENCH = Path("benchmarks/results/fusion.json")


def _f(x: Any, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(float(x), fmt)


def _ci(d: dict[str, Any], key: str = "macro_f1") -> str:
    return f"{_f(d[key])} [{_f(d[key + '_ci_low'])}, {_f(d[key + '_ci_high'])}]"


def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    text = f"{_f(d['diff'], '+.3f')} [{_f(d['ci_low'], '+.3f')}, {_f(d['ci_high'], '+.3f')}]"
    return f"**{text}**" if d.get("resolved") else text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def headline_lines(head: dict[str, Any], detail: dict[str, Any]) -> list[str]:
    boot = detail["bootstrap"]
    seeds = detail.get("seeds") or {"seeds": [boot["seed"]]}
    rows = [
        ["fusion method", str(head.get("fusion"))],
        ["test macro-F1 (all languages)", _ci(detail["models"]["fused"]["overall"])],
        ["seed mean ± std of test macro-F1", f"{_f(head.get('test_macro_f1_seed_mean'))} ± {_f(head.get('test_macro_f1_seed_std'))} ({head.get('n_seeds', 1)} seeds)"],
        ["source / target macro-F1", f"{_f(head['source_macro_f1'])} / {_f(head['target_macro_f1'])}"],
        ["transfer gap (source − target)", f"{_f(head['transfer_gap'], '+.3f')} [{_f(detail.get('transfer_gap_ci_low'), '+.3f')}, {_f(detail.get('transfer_gap_ci_high'), '+.3f')}]"],
        ["worst language", f"{head['worst_language']} ({_f(head['worst_language_macro_f1'])})"],
        [f"fusion gain vs val-chosen baseline ({head.get('val_chosen_baseline')})", _f(head.get("fusion_gain_vs_val_chosen"), "+.3f")],
        ["fusion gain vs best single modality, worst language", _f(head.get("fusion_gain_min_per_language"), "+.3f")],
        ["ECE after temperature scaling", _f(head.get("ece_after"))],
    ]  # fmt: skip
    return [
        "## Headline (zero-shot, test)",
        "",
        f"Seeds {', '.join(map(str, seeds['seeds']))}; the registered model is seed {seeds['seeds'][0]}'s. "
        f"95 % intervals: group bootstrap over {boot.get('groups', '?')} translation groups, "
        f"{boot['resamples']} resamples, one draw for every model and language (paired differences).",
        "",
        *_table(["metric", "value"], rows),
        "",
    ]


def models_lines(detail: dict[str, Any]) -> list[str]:
    langs = list(detail["per_language"])
    models = detail["models"]
    rows = [
        [name, _ci(d["overall"]), *(_f(d["per_language"][c]["macro_f1"]) for c in langs)]
        for name, d in models.items()
    ]
    vs = detail["fused_vs_baselines"]
    diffs = [
        [f"fused − {b}", _diff(d["overall"]), *(_diff(d["per_language"][c]) for c in langs)]
        for b, d in vs.items()
    ]
    return [
        "## Every model on test",
        "",
        *_table(["model", "macro-F1 [95 % CI]", *langs], rows),
        "",
        "Paired differences (bold: the CI excludes 0):",
        "",
        *_table(["difference", "overall", *langs], diffs),
        "",
    ]


def transfer_lines(detail: dict[str, Any]) -> list[str]:
    by = detail["transfer_gap_by_model"]
    targets = [c for c in detail["per_language"] if c not in detail["source_langs"].split(",")]
    rows = [[m, _diff(by[m]["mean"]), *(_diff(by[m]["per_language"].get(c)) for c in targets)] for m in by]
    return [
        "## Transfer gap by modality (source − target, paired CIs)",
        "",
        *_table(["model", "mean", *targets], rows),
        "",
    ]


def ablation_lines(detail: dict[str, Any]) -> list[str]:
    langs = list(detail["per_language"])
    abl = detail["ablation"]

    def cell(d: dict[str, Any]) -> str:
        return _diff({"diff": d["drop"], "ci_low": d["drop_ci_low"], "ci_high": d["drop_ci_high"],
                      "resolved": (d["drop_ci_low"] or 0) > 0 or (d["drop_ci_high"] or 0) < 0})  # fmt: skip

    rows = [
        [f"without {m}", cell(abl[m]["overall"]), *(cell(abl[m]["per_language"][c]) for c in langs)]
        for m in abl
    ]
    return [
        "## What each modality adds (macro-F1 drop when masked)",
        "",
        *_table(["masked", "overall", *langs], rows),
        "",
    ]


def few_shot_lines(detail: dict[str, Any]) -> list[str]:
    fs = detail.get("few_shot")
    if not fs:
        return []
    rows = [[c, *(_f(v) for v in vals)] for c, vals in fs["per_language"].items()]
    rows.append(["target mean", *(_f(v) for v in fs["target_mean"])])
    return [
        "## Few-shot target-language curve (first seed)",
        "",
        *_table(["language", *(f"k={k}" for k in fs["k"])], rows),
        "",
    ]


def generic_lines(title: str, data: Any) -> list[str]:
    """A JSON file we only show: its numeric leaves as a two-column table."""
    flat: list[list[str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat.append([prefix, _f(value)])
        elif isinstance(value, str):
            flat.append([prefix, value])

    walk("", data)
    return [f"## {title}", "", *_table(["key", "value"], flat), ""] if flat else []


VARIANT_TITLES = {"with": "with interactions (irony, reliability)", "without": "without interactions"}


def fusion_benchmark_table(result: dict[str, Any]) -> list[str]:
    """One variant of ``benchmarks/fusion.py``: every method, its CI, and paired CIs vs the best and the ceiling."""
    cfg, ceil = result["config"], result["ceiling_on_test"]
    rows = [
        [
            f"{name} (best)" if name == result["best"] else name,
            f"{_f(m['test_macro_f1'])} [{_f(m['ci_low'])}, {_f(m['ci_high'])}]",
            _f(m["seed_std"]),
            _diff(m["vs_best"]) if name != result["best"] else "",
            _diff(m["vs_ceiling"]),
        ]
        for name, m in sorted(result["methods"].items(), key=lambda kv: -kv[1]["test_macro_f1"])
    ]
    inter = ", ".join(f"{k} {v}" for k, v in cfg["interactions"].items())
    return [
        f"### Data {VARIANT_TITLES.get(cfg['data'], cfg['data'])}",
        "",
        f"Interactions: {inter}. Rows: "
        + ", ".join(f"{s} {n}" for s, n in cfg["rows"].items())
        + f"; {len(cfg['seeds'])} seeds, {cfg['trials']} configurations per method, {_f(result['seconds'], '.0f')} s. "
        f"Bayes-optimal ceiling on these test posts {_f(ceil['bayes']['value'])} "
        f"[{_f(ceil['bayes']['ci_low'])}, {_f(ceil['bayes']['ci_high'])}]; "
        f"the best any additive (late) rule can do {_f(ceil['late']['value'])}.",
        "",
        *_table(
            [
                "method",
                "test macro-F1 [95 % CI]",
                "seed std",
                "vs best (paired)",
                "vs Bayes ceiling (paired)",
            ],
            rows,
        ),
        "",
    ]


def fusion_benchmark_lines(bench: dict[str, Any]) -> list[str]:
    """The ``benchmarks/results/fusion.json`` section: one table per data variant, then what it shows."""
    out = [
        "## Fusion benchmark (benchmarks/results/fusion.json)",
        "",
        "`benchmarks/fusion.py`: the seven fusion layers, each single modality, the LogisticRegression on all "
        "features and calibrated late fusion, on oracle features from the generator's latent variables, each "
        "method tuned with the same budget on val. Test macro-F1 is the mean over seeds; bold: the paired CI "
        'excludes 0. "best" is the top test score, a reference for the paired differences; it selects nothing.',
        "",
    ]
    findings = []
    for variant in ("with", "without"):
        if variant in bench:
            out += fusion_benchmark_table(bench[variant])
            findings.append(_late_fusion_finding(variant, bench[variant]))
    return out + [*(f"- {line}" for line in findings), ""]


LATE_FUSION = ("late", "late_calibrated")


def _late_fusion_finding(variant: str, result: dict[str, Any]) -> str:
    """What the issue asked of the benchmark: beat late fusion with interactions, tie it without."""
    methods, best, ceil = result["methods"], result["best"], result["ceiling_on_test"]
    late = {n: methods[n]["vs_best"] for n in LATE_FUSION if n in methods and n != best}
    against = ", ".join(f"`{n}` {_diff(d)}" for n, d in late.items())
    if variant == "with":
        head = (
            f"With interactions `{best}` beats late fusion by a margin the paired CI resolves ({against})"
            if best not in LATE_FUSION and late and all(d["resolved"] for d in late.values())
            else f"With interactions the best method is `{best}`, but nothing beats late fusion by a margin "
            f"the paired CI resolves ({against}): worse than hoped"
        )
        room = ceil["bayes"]["value"] - ceil["late"]["value"]
        return (
            f"{head}. The interactions open {_f(room)} of headroom over the best additive rule "
            f"({_f(ceil['late']['value'])} → {_f(ceil['bayes']['value'])}); the best model reaches "
            f"{_f(methods[best]['test_macro_f1'])}."
        )
    if best in LATE_FUSION:
        return f"Without interactions late fusion (`{best}`) is the best method" + (
            f"; {against}." if late else "."
        )
    if not any(d["resolved"] for d in late.values()):
        return f"Without interactions late fusion ties the best method `{best}` ({against})."
    return f"Without interactions late fusion falls resolvably short of `{best}` ({against})."


def worse_than_hoped(detail: dict[str, Any], ceiling: dict[str, Any] | None) -> list[str]:
    """Findings derived from the paired CIs: each bullet says which number fell short and by how much."""
    out: list[str] = []
    gaps = detail["transfer_gap_by_model"]["fused"]["per_language"]
    lost = [f"{c} ({_diff(d)})" for c, d in gaps.items() if d["resolved"] and d["diff"] > 0]
    if lost:
        out.append(
            "Transfer is incomplete: the fused model is resolvably worse than the source in "
            + ", ".join(lost)
            + "."
        )
    gains = detail.get("fusion_gains")
    if gains:
        best = gains["vs_best_single_per_language"]["per_language"]
        weak = [
            f"{c} (vs {d['baseline']}: {_diff(d)})"
            for c, d in best.items()
            if not (d["resolved"] and d["diff"] > 0)
        ]
        if weak:
            out.append("Fusion does not resolvably beat the best single modality in " + ", ".join(weak) + ".")
    for b, d in detail["fused_vs_baselines"].items():
        if b in ("logreg", "late_fusion") and not (d["overall"]["resolved"] and d["overall"]["diff"] > 0):
            out.append(f"The fused model does not resolvably beat `{b}` overall ({_diff(d['overall'])}).")
    for m, d in detail["ablation"].items():
        o = d["overall"]
        if o["drop_ci_low"] is not None and o["drop_ci_low"] <= 0:
            out.append(
                f"Masking {m} costs no resolvable macro-F1 (drop {_f(o['drop'], '+.3f')}, CI low {_f(o['drop_ci_low'], '+.3f')})."
            )
    ece = detail["ece_change"]["overall"]
    if not (ece["resolved"] and ece["diff"] > 0):
        out.append(f"Temperature scaling does not resolvably lower ECE on test ({_diff(ece)}).")
    std = ((detail.get("seeds") or {}).get("std") or {}).get("test_macro_f1")
    if std is not None and std > 0.01:
        out.append(f"Seeds disagree: test macro-F1 std {_f(std)} over {len(detail['seeds']['seeds'])} seeds.")
    fs = detail.get("few_shot")
    if fs and len(fs["k"]) > 1 and fs["target_mean"][-1] <= fs["target_mean"][0]:
        out.append(
            f"Few-shot posts do not help: target mean {_f(fs['target_mean'][0])} at k=0, {_f(fs['target_mean'][-1])} at k={fs['k'][-1]}."
        )
    return ["## What came out worse than hoped", "", *(f"- {line}" for line in out or ["Nothing: every comparison above resolved in the hoped direction."]), ""]  # fmt: skip


def render(
    head: dict[str, Any], detail: dict[str, Any], ceiling: dict[str, Any] | None, bench: dict[str, Any] | None
) -> str:
    """The whole of docs/RESULTS.md."""
    lines = [
        "# What the default pipeline scores",
        "",
        "Generated by `python -m babelfuse.evaluation.results_doc` from `metrics/eval.json`, "
        "`metrics/eval_detail.json`"
        + (", `metrics/ceiling.json`" if ceiling else "")
        + (" and `benchmarks/results/fusion.json`" if bench else "")
        + " of one `make run`; do not edit by hand.",
        "",
        *headline_lines(head, detail),
        *worse_than_hoped(detail, ceiling),
        *models_lines(detail),
        *transfer_lines(detail),
        *ablation_lines(detail),
        *few_shot_lines(detail),
        *(generic_lines("Bayes-optimal ceiling (metrics/ceiling.json)", ceiling) if ceiling else []),
        *(fusion_benchmark_lines(bench) if bench else []),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _read(path: Path, required: bool) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            raise BabelfuseError(f"{path}: missing; run the evaluate stage (make run) first")
        return None
    return read_json(path)


def render_from(root: Path) -> str:
    """The rendering of the metrics files under project folder ``root``."""
    metrics = root / paths.METRICS
    return render(
        _read(metrics / "eval.json", True),
        _read(metrics / "eval_detail.json", True),
        _read(metrics / "ceiling.json", False),
        _read(root / FUSION_BENCH, False),
    )


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="project folder (holds metrics/)")
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/RESULTS.md is out of date")
    args = ap.parse_args(argv)
    text, doc = render_from(args.root), args.root / DOC
    if args.check:
        current = doc.read_text(encoding="utf-8") if doc.exists() else ""
        if current != text:
            print(f"{doc} is out of date: run python -m babelfuse.evaluation.results_doc", file=sys.stderr)
            sys.exit(1)
        return
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
