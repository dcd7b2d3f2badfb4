"""The standalone evaluation report (reports/eval.html): headline numbers, then one section per question.

It answers, for every language, "does what was learned in the source language carry over?" and "what
does each modality add?", with the figures embedded as base64 PNG so the file opens anywhere.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from babelfuse.evaluation import report_sections as sections
from babelfuse.evaluation.figures import CHANCE_F1
from babelfuse.labels import LABELS, LANGUAGES
from babelfuse.paths import MODALITIES

NEGLIGIBLE = 0.01  # a macro-F1 change smaller than this counts as "nothing measurable"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1.2em 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6em 1em;min-width:150px}
.card b{display:block;font-size:1.5em}.card span{color:#666;font-size:.85em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.good{color:#1a7f37}.bad{color:#b42318}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}li{margin:.25em 0}
"""


def lang_name(code: str) -> str:
    return f"{LANGUAGES[code].name} ({code})" if code in LANGUAGES else code


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    head = "".join(
        f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left else ""}">{cell}</td>' for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _ci(d: dict[str, float], key: str) -> str:
    return f"{d[key]:.3f} <small>[{d[key + '_ci_low']:.3f}, {d[key + '_ci_high']:.3f}]</small>"


def _num(x: float | None, fmt: str) -> str:
    """A number, or "n/a" where it is undefined (e.g. no target language in the test split)."""
    return "n/a" if x is None else format(x, fmt)


def _signed(x: float) -> str:
    cls = "good" if x > NEGLIGIBLE else "bad" if x < -NEGLIGIBLE else ""
    return f'<span class="{cls}">{x:+.3f}</span>'


def transfer_verdict(lang: dict[str, float], gap: dict[str, float] | None) -> str:
    """Plain-words answer for one target language from the *paired* CI of its gap to the source.

    ``gap`` is the source-minus-target macro-F1 with its paired group-bootstrap CI; ``lang`` the
    language's own score and CI (for the comparison with chance).
    """
    if gap is None or gap["ci_low"] is None or gap["ci_low"] <= 0:
        return "carries over: the paired CI of the gap to the source includes 0"
    if lang["macro_f1_ci_low"] > CHANCE_F1:
        return (
            f"carries over partially: {gap['diff']:.3f} below the source "
            f"(paired CI [{gap['ci_low']:.3f}, {gap['ci_high']:.3f}]), still above chance"
        )
    return "does not carry over: not distinguishable from chance (1/3)"


def _gap(metrics: dict[str, Any], code: str, model: str = "fused") -> dict[str, float] | None:
    return ((metrics.get("transfer_gap_by_model") or {}).get(model) or {}).get("per_language", {}).get(code)


def modality_role(modality: str, drop: float) -> str:
    """One modality's effect in words, from the macro-F1 lost when it is masked."""
    if drop > NEGLIGIBLE:
        return f"{modality} adds {drop:.3f}"
    if drop < -NEGLIGIBLE:
        return f"{modality} hurts (F1 {-drop:+.3f} without it)"
    return f"{modality} adds nothing measurable ({drop:+.3f})"


def modality_sentence(code: str, metrics: dict[str, Any]) -> str:
    """What each modality adds in one language, biggest first, and fusion vs the best single-modality model."""
    abl = metrics["ablation"]
    drops = {m: abl[m]["per_language"][code]["drop"] for m in MODALITIES}
    order = sorted(drops, key=drops.get, reverse=True)
    top = order[0]
    lead = (
        f"{top} carries most of the signal"
        if drops[top] > NEGLIGIBLE
        else "no single modality is indispensable (the others compensate or none helps)"
    )
    gain = metrics["fusion_gain"]["per_language"][code]["gain"]
    best = metrics["fusion_gain"]["best_baseline"]
    if abs(gain) <= NEGLIGIBLE:
        fusion = f"fusion matches the {best}-only model ({gain:+.3f})"
    else:
        fusion = f"fusion {'beats' if gain > 0 else 'trails'} the {best}-only model by {abs(gain):.3f}"
    return (
        f"<b>{html.escape(lang_name(code))}</b>: {lead}. "
        + "; ".join(modality_role(m, drops[m]) for m in order)
        + f". Combined, {fusion}."
    )


def short_answer(metrics: dict[str, Any], source: list[str]) -> str:
    """The two questions answered in two sentences, before any table."""
    per = metrics["per_language"]
    groups: dict[str, list[str]] = {"fully": [], "partially": [], "not": []}
    for code, d in per.items():
        if code in source:
            continue
        verdict = transfer_verdict(d, _gap(metrics, code))
        key = "not" if verdict.startswith("does not") else "partially" if "partially" in verdict else "fully"
        groups[key].append(code)
    phrases = (("fully", "carries over fully to"), ("partially", "carries over only partially to"),
               ("not", "does not carry over to"))  # fmt: skip
    transfer = "; it ".join(f"{words} {', '.join(groups[key])}" for key, words in phrases if groups[key])
    abl = metrics["ablation"]
    tops = [max(MODALITIES, key=lambda m, c=c: abl[m]["per_language"][c]["drop"]) for c in per]
    counts = ", ".join(f"{m} in {tops.count(m)}" for m in MODALITIES if tops.count(m))
    return (
        f"<p><b>Short answer.</b> What was learned in {' and '.join(LANGUAGES[c].name if c in LANGUAGES else c for c in source)} {transfer or 'has no other language to carry to'}. "
        f"The modality whose loss costs most is {counts} of {len(per)} languages (section 2).</p>"
    )


def _cards(metrics: dict[str, Any]) -> str:
    """The headline cards."""
    src_f1 = metrics["source_macro_f1"] if metrics["source_macro_f1"] is not None else float("nan")
    gain, cal = metrics["fusion_gain"], metrics["calibration"]
    cards = [
        (
            f"{metrics['test_macro_f1']:.3f}",
            f"test macro-F1 [{metrics['test_macro_f1_ci_low']:.3f}, {metrics['test_macro_f1_ci_high']:.3f}]",
        ),
        (f"{src_f1:.3f}", f"source macro-F1 ({metrics['source_langs']})"),
        (_num(metrics["target_macro_f1"], ".3f"), "target macro-F1 (mean over other languages)"),
        (_num(metrics["transfer_gap"], "+.3f"), "transfer gap (source − target)"),
        (html.escape(metrics["worst_language"]), "worst language"),
        (
            f"{gain['overall']['gain']:+.3f}",
            f"fusion gain over {gain['best_baseline']} (the single modality chosen on source val)",
        ),
        (
            f"{cal['before']['overall']['ece']:.3f} → {cal['after']['overall']['ece']:.3f}",
            f"ECE before → after T = {cal['temperature']:.2f}",
        ),
    ]
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b><span>{html.escape(k)}</span></div>" for v, k in cards)
        + "</div>"
    )


def _transfer_part(metrics: dict[str, Any], figures: dict[str, bytes], source: list[str]) -> list[str]:
    """Section 1: each language against the source, verdicts from the paired CIs."""
    per = metrics["per_language"]
    out: list[str] = []
    rows = []
    for code, d in per.items():
        is_src = code in source
        verdict = "source language" if is_src else transfer_verdict(d, _gap(metrics, code))
        rows.append(
            [
                html.escape(lang_name(code)),
                "source" if is_src else "target",
                d["n"],
                _ci(d, "accuracy"),
                _ci(d, "macro_f1"),
                "" if is_src else sections.diff_cell(_gap(metrics, code)),
                html.escape(verdict),
            ]
        )
    out.append(
        _table(
            [
                "language",
                "role",
                "n",
                "accuracy [95 % CI]",
                "macro-F1 [95 % CI]",
                "gap to source [paired CI]",
                "answer",
            ],
            rows,
            left=2,
        )
    )
    out.append(_img(figures["per_language"], "macro-F1 per language"))
    return out


def _modality_part(metrics: dict[str, Any], figures: dict[str, bytes]) -> list[str]:
    """Section 2: what each modality adds, the val-chosen baseline, missing-modality robustness."""
    per, gain = metrics["per_language"], metrics["fusion_gain"]
    out: list[str] = []
    out.append(
        "<h2>2. What does each modality add?</h2><p>Each modality masked for every test post (mask 0, features 0); "
        "the drop is the macro-F1 lost. Positive = the modality helped.</p><ul>"
    )
    out += [f"<li>{modality_sentence(code, metrics)}</li>" for code in per]
    out.append("</ul>")
    abl = metrics["ablation"]
    rows = [
        [html.escape(lang_name(code)), f"{per[code]['macro_f1']:.3f}"]
        + [
            f"{abl[m]['per_language'][code]['macro_f1']:.3f} ({-abl[m]['per_language'][code]['drop']:+.3f})"
            for m in MODALITIES
        ]
        + [f"{gain['per_language'][code]['baseline']:.3f}", _signed(gain["per_language"][code]["gain"])]
        for code in per
    ]
    out.append(
        _table(
            [
                "language",
                "all modalities",
                *(f"without {m}" for m in MODALITIES),
                f"{gain['best_baseline']}-only baseline",
                "fusion gain",
            ],
            rows,
        )
    )
    out.append(_img(figures["ablation"], "modality ablation"))
    val_scores = ", ".join(f"{m} {s:.3f}" for m, s in gain["baseline_val_macro_f1"].items())
    out.append(
        f"<p>The best single-modality baseline was chosen on source <code>val</code> macro-F1 ({val_scores}), "
        "never on test.</p>"
    )
    out.append(
        "<h3>Missing-modality robustness</h3><p>A seeded random share of each language's posts loses one modality.</p>"
    )
    out.append(_img(figures["missing"], "missing-modality robustness"))
    miss = metrics["missing_modality"]
    rows = [
        [f"{m}", k.split("_")[1] + " %", f"{miss[m][k]['overall']:.3f}"]
        + [f"{miss[m][k]['per_language'][c]:.3f}" for c in per]
        for m in MODALITIES
        for k in miss[m]
    ]
    out.append(_table(["missing", "share", "overall", *per], rows, left=2))
    return out


def _calibration_part(metrics: dict[str, Any], figures: dict[str, bytes]) -> list[str]:
    """Section 3: temperature scaling, ECE/Brier/NLL before and after."""
    per, cal = metrics["per_language"], metrics["calibration"]
    out: list[str] = []
    out.append(
        f"<h2>3. Calibration</h2><p>Temperature T = {cal['temperature']:.3f} fitted on source <code>val</code> only "
        f"(NLL {cal['val_nll_before']:.3f} → {cal['val_nll_after']:.3f}); {cal['bins']} confidence bins.</p>"
    )
    before, after = cal["before"], cal["after"]
    rows = [
        [html.escape(lang_name(c) if c != "overall" else "overall")]
        + [f"{before_c[k]:.3f} → {after_c[k]:.3f}" for k in ("ece", "brier", "nll")]
        for c, before_c, after_c in [("overall", before["overall"], after["overall"])]
        + [(c, before["per_language"][c], after["per_language"][c]) for c in per]
    ]
    out.append(_table(["language", "ECE", "Brier", "NLL"], rows))
    out.append(_img(figures["reliability"], "reliability diagram"))
    return out


def _confusion_part(confusion: dict[str, Any], figures: dict[str, bytes]) -> list[str]:
    """Section 4: the overall confusion matrix and the per-language grid."""
    out: list[str] = []
    out.append(
        "<h2>4. Confusion matrices</h2><p>Rows actual, columns predicted; colour is the row share.</p>"
    )
    overall = confusion["overall"]
    rows = [[label] + [int(v) for v in overall[i]] for i, label in enumerate(LABELS)]
    out.append(_table(["actual \\ predicted", *LABELS], rows))
    out.append(_img(figures["confusion"], "confusion matrices"))
    return out


def render(metrics: dict[str, Any], figures: dict[str, bytes], confusion: dict[str, Any]) -> str:
    """The whole report as one HTML string; ``figures`` maps figure names to PNG bytes."""
    per = metrics["per_language"]
    source = [c for c in metrics["source_langs"].split(",") if c]
    source_names = " and ".join(lang_name(c) for c in source) or "the source language"
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>babelfuse evaluation</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>babelfuse evaluation</h1>",
        f"<p class='sub'>Test split, {metrics['n_test']} posts in {len(per)} languages. Trained on {html.escape(source_names)} "
        "only: every other language is zero-shot.</p>",
        _cards(metrics),
        short_answer(metrics, source),
        f"<h2>1. Does what was learned in {html.escape(source_names)} carry to each other language?</h2>",
    ]
    out += _transfer_part(metrics, figures, source)
    out += _modality_part(metrics, figures)
    out += _calibration_part(metrics, figures)
    out += _confusion_part(confusion, figures)
    out += [
        sections.baselines_section(metrics),
        sections.gains_section(metrics),
        sections.transfer_by_modality_section(metrics),
        sections.seeds_section(metrics),
        sections.few_shot_section(metrics, figures.get("few_shot"), _img),
        sections.explain_section(metrics, figures.get("explain"), _img),
    ]
    boot = metrics["bootstrap"]
    out.append(
        f"<h2>How these numbers were made</h2><p>Test split only. 95 % intervals: percentile group bootstrap, "
        f"{boot['resamples']} resamples of the {boot.get('groups', '?')} translation groups (a meaning with all its "
        f"languages; one draw shared by every model and language, so differences are paired; seed {boot['seed']}, "
        f"level {boot['ci']}). Chance macro-F1 ≈ 1/3. "
        "Baseline choice and temperature use source <code>val</code> only.</p></body></html>"
    )
    return "\n".join(out)
