"""The report's sections on baselines, transfer by modality, fusion gains, seeds and the few-shot curve.

Each function takes the eval_detail dict and returns HTML; every difference is shown with its paired
group-bootstrap CI, and a difference counts as resolved only when that CI excludes 0.
"""

from __future__ import annotations

import html
from typing import Any

from babelfuse.paths import MODALITIES


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def diff_cell(d: dict[str, Any] | None) -> str:
    """``+0.123 [0.050, 0.190]``, bold when the paired CI excludes 0."""
    if not d:
        return ""
    text = f"{_f(d['diff'], '+.3f')} <small>[{_f(d['ci_low'])}, {_f(d['ci_high'])}]</small>"
    return f"<b>{text}</b>" if d.get("resolved") else text


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def baselines_section(m: dict[str, Any]) -> str:
    """Every model's test macro-F1 per language with its CI, and fused minus each with a paired CI."""
    models, langs = m["models"], list(m["per_language"])
    rows = [
        [html.escape(name), *(f"{d['macro_f1']:.3f} <small>[{_f(d['macro_f1_ci_low'])}, {_f(d['macro_f1_ci_high'])}]</small>"
                              for d in (models[name]["overall"], *(models[name]["per_language"][c] for c in langs)))]
        for name in models
    ]  # fmt: skip
    vs = m["fused_vs_baselines"]
    diffs = [
        [f"fused − {html.escape(b)}", *(diff_cell(d) for d in (vs[b]["overall"], *(vs[b]["per_language"][c] for c in langs)))]
        for b in vs
    ]  # fmt: skip
    val = ", ".join(f"{k} {_f(v)}" for k, v in m["val_macro_f1"].items())
    return (
        "<h2>Baselines on test (each tuned on its own, scored on the same rows)</h2>"
        f"<p>Source-val macro-F1 (what chose the val baseline): {html.escape(val)}. "
        "<code>late_fusion</code> multiplies the single-modality models' probabilities, each "
        "temperature-scaled on source val.</p>"
        + _table(["model", "overall", *langs], rows)
        + "<p>Paired differences (bold: the 95 % CI excludes 0).</p>"
        + _table(["difference", "overall", *langs], diffs)
    )


def gains_section(m: dict[str, Any]) -> str:
    g = m.get("fusion_gains")
    if not g:
        return ""
    chosen, best = g["vs_val_chosen"], g["vs_best_single_per_language"]
    langs = list(best["per_language"])
    rows = [
        [f"vs val-chosen ({html.escape(chosen['baseline'])})", diff_cell(chosen["overall"]),
         *(diff_cell(chosen["per_language"][c]) for c in langs)],
        ["vs best single modality of each language (chosen on test: a lower bound)", diff_cell(best["overall"]),
         *(f"{diff_cell(best['per_language'][c])} <small>{best['per_language'][c]['baseline']}</small>" for c in langs)],
    ]  # fmt: skip
    return "<h2>Fusion gain</h2>" + _table(["fused minus", "overall", *langs], rows)


def transfer_by_modality_section(m: dict[str, Any]) -> str:
    """Source minus target macro-F1 per language for each modality alone and fused (paired CIs)."""
    by = m["transfer_gap_by_model"]
    targets = [c for c in m["per_language"] if c not in m["source_langs"].split(",")]
    rows = [
        [html.escape(model), diff_cell(by[model]["mean"]), *(diff_cell(by[model]["per_language"].get(c)) for c in targets)]
        for model in ("fused", *MODALITIES) if model in by
    ]  # fmt: skip
    return (
        "<h2>Which modality loses what across languages</h2><p>Transfer gap (source − target macro-F1) "
        "of each model, paired CIs; bold = resolved.</p>"
        + _table(["model", "mean over targets", *targets], rows)
    )


def seeds_section(m: dict[str, Any]) -> str:
    s = m.get("seeds")
    if not s:
        return ""
    rows = [
        [html.escape(k), _f(s["mean"][k]), _f(s["std"][k]), *(_f(h.get(k)) for h in s["per_seed"].values())]
        for k in s["mean"]
    ]
    return (
        f"<h2>Training seeds</h2><p>{len(s['seeds'])} seeds; std is the sample std (ddof 1). The registered "
        f"model is seed {s['seeds'][0]}'s.</p>"
        + _table(["metric", "mean", "std", *map(str, s["seeds"])], rows)
    )


def few_shot_section(m: dict[str, Any], png: bytes | None, img: Any) -> str:
    fs = m.get("few_shot")
    if not fs:
        return ""
    rows = [[html.escape(c), *(_f(v) for v in vals)] for c, vals in fs["per_language"].items()]
    rows.append(["target mean", *(_f(v) for v in fs["target_mean"])])
    return (
        "<h2>Few-shot: k labelled target-language posts per class</h2><p>Drawn from the <code>fewshot</code> "
        f"split only, refitted with the same params and seed {fs.get('seed', '')} (first seed only); k = 0 is "
        "the zero-shot headline model.</p>"
        + _table(["language", *(f"k = {k}" for k in fs["k"])], rows)
        + (img(png, "few-shot curve") if png else "")
    )


def explain_section(m: dict[str, Any], png: bytes | None, img: Any) -> str:
    """Per-prediction modality contributions (exact Shapley values), averaged per language."""
    ex = m.get("explain")
    if not ex:
        return ""
    groups = {"overall": ex["overall"], **ex["per_language"]}
    rows = [
        [html.escape(c), str(d["n"]), *(_f(d["mean_abs_contribution"][mod]) for mod in MODALITIES),
         _f(d["flip_share_without_top"])]
        for c, d in groups.items()
    ]  # fmt: skip
    return (
        "<h2>Which modality decided each answer?</h2><p>For every test post, the exact Shapley value of each "
        "present modality for the probability of the predicted class, over all subsets of its modalities "
        "(masked as missing; absent = 0). The values of a post sum to p(class | all) &minus; p(class | none). "
        "Last column: share of posts whose prediction changes when their top contributor is masked.</p>"
        + _table(["language", "posts", *(f"mean |{mod}|" for mod in MODALITIES), "flips without top"], rows)
        + (img(png, "modality contributions") if png else "")
    )
