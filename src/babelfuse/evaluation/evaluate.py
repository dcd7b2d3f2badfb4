"""The ``evaluate`` stage's library: the fused model and every baseline on test, with paired uncertainty.

The entry point is :mod:`babelfuse.stages.evaluate` (``python -m babelfuse.stages.evaluate``).

Source languages are the languages of ``train.npz``; everything fitted or chosen here (temperatures,
the val-chosen baseline) uses source ``val`` only, so the test numbers stay honest. All intervals
come from one group-bootstrap draw over test meanings (:mod:`babelfuse.evaluation.bootstrap`), shared
by every model and language, so each difference has a paired CI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from babelfuse.errors import BabelfuseError
from babelfuse.evaluation import ablation, calibration, metrics, scoring
from babelfuse.evaluation import bootstrap as bs
from babelfuse.explain import contribution_summary
from babelfuse.jsonio import json_safe
from babelfuse.paths import MODALITIES

log = logging.getLogger("babelfuse.evaluate")

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # the eval_detail.json content (eval.json is its headline())
    temperature: dict[str, Any]  # the temperature.json content
    confusion: dict[str, np.ndarray]
    reliability: dict[str, list[dict[str, float]]]  # {"before": bins, "after": bins}, overall test
    y_pred: np.ndarray


@dataclass
class Labelled:
    """One split's labels, languages and bootstrap groups, plus the model-input dict."""

    y: np.ndarray
    langs: np.ndarray
    groups: np.ndarray
    inputs: dict[str, np.ndarray]

    @classmethod
    def of(cls, split: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> Labelled:
        return cls(
            np.asarray(split["label"]), np.asarray(split["lang"]).astype(str), bs.group_ids(split), inputs
        )

    def rows(self, keep: np.ndarray) -> Labelled:
        return Labelled(
            self.y[keep], self.langs[keep], self.groups[keep], {k: v[keep] for k, v in self.inputs.items()}
        )


def source_val(val: Labelled, source_langs: list[str]) -> Labelled:
    """The val rows in the source languages: the only rows anything is fitted or chosen on."""
    keep = np.isin(val.langs, source_langs)
    if not keep.any():
        raise BabelfuseError(
            f"val split has no rows in the source languages {source_langs}: cannot fit on val"
        )
    return val.rows(keep)


def all_probs(predict: Predict, baselines: dict[str, Predict], data: Labelled, masked: bool) -> scoring.Probs:
    """``{fused, text, image, audio[, logreg][, fused_without_<m>]}`` probabilities on ``data``."""
    out = {"fused": predict(data.inputs), **{m: fn(data.inputs) for m, fn in baselines.items()}}
    if masked:
        out.update({scoring.without(m): predict(ablation.mask_modality(data.inputs, m)) for m in MODALITIES})
    return out


def val_macro_f1(val_probs: scoring.Probs, y_val: np.ndarray) -> dict[str, float]:
    """Source-val macro-F1 per model: what the val-chosen baseline is chosen on."""
    return {name: metrics.macro_f1(y_val, metrics.predictions(p)) for name, p in val_probs.items()}


def with_late_fusion(
    test_probs: scoring.Probs, val_probs: scoring.Probs, test: Labelled, val: Labelled
) -> tuple[scoring.Probs, scoring.Probs, dict[str, float], dict[str, float]]:
    """Adds ``late_fusion`` (calibrated single-modality product, temperatures from source val) to both.

    Returns (test probs, val probs, temperatures, source-val macro-F1 of every model).
    """
    temps = {name: calibration.fit_temperature(val.y, p) for name, p in val_probs.items()}
    if all(m in test_probs for m in MODALITIES):
        test_probs = {
            **test_probs,
            "late_fusion": scoring.late_fusion(test_probs, test.inputs["mask"], temps),
        }
        val_probs = {**val_probs, "late_fusion": scoring.late_fusion(val_probs, val.inputs["mask"], temps)}
    return test_probs, val_probs, temps, val_macro_f1(val_probs, val.y)


def score_seed(
    test_probs: scoring.Probs,
    val_probs: scoring.Probs,
    test: Labelled,
    val: Labelled,
    source_langs: list[str],
    params: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Every scored number of one training seed's models on test (no file I/O, no callables).

    ``val`` is source val only; the val-chosen baseline is the single modality with the best
    source-val macro-F1, whatever test says.
    """
    with threadpool_limits(limits=1, user_api="blas"):  # small matrix products: BLAS threads only contend
        return _score_seed(test_probs, val_probs, test, val, source_langs, params, seed)


def _score_seed(
    test_probs: scoring.Probs,
    val_probs: scoring.Probs,
    test: Labelled,
    val: Labelled,
    source_langs: list[str],
    params: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    order = metrics.language_order(test.langs, source_langs)
    draws = bs.draw(test.groups, int(params["bootstrap"]), seed)
    level = float(params["ci"])
    test_probs, val_probs, temps, val_scores = with_late_fusion(test_probs, val_probs, test, val)
    singles = [m for m in MODALITIES if m in test_probs]
    val_chosen = ablation.select_best_baseline({m: val_scores[m] for m in singles})
    preds = {name: metrics.predictions(p) for name, p in test_probs.items()}
    models = [k for k in ("fused", *scoring.BASELINES) if k in test_probs]
    scaled = calibration.apply_temperature(test_probs["fused"], temps["fused"])
    y, langs = test.y, test.langs
    groups = scoring.groups_of(langs, order)
    bins = int(params["calibration_bins"])
    return {
        "order": order,
        "models": scoring.model_scores(y, {k: test_probs[k] for k in models}, langs, order, draws, level),
        "val_macro_f1": {k: val_scores[k] for k in models},
        "temperatures": {k: temps[k] for k in temps if k in models},
        "val_chosen": val_chosen,
        "transfer_gap": {
            m: scoring.transfer_gaps(y, preds[m], langs, source_langs, order, draws, level)
            for m in ("fused", *singles)
        },
        "fusion_gain": scoring.fusion_gains(y, preds, langs, order, val_chosen, draws, level)
        if len(singles) == len(MODALITIES)
        else None,
        "fused_vs": {
            b: scoring.paired_vs(y, preds["fused"], preds[b], groups, draws, level)
            for b in models
            if b != "fused"
        },
        "ablation": scoring.ablation_drops(y, preds, langs, order, draws, level),
        "ece_change": scoring.ece_change(y, test_probs["fused"], scaled, langs, order, bins, draws, level),
        "calibration": {
            "temperature": temps["fused"],
            "fitted_on": "source val",
            "bins": bins,
            "before": scoring.split_groups(
                calibration.calibration_by_language(y, test_probs["fused"], langs, bins)
            ),
            "after": scoring.split_groups(calibration.calibration_by_language(y, scaled, langs, bins)),
        },
    }


def legacy_view(scored: dict[str, Any], source_langs: list[str], n_test: int) -> dict[str, Any]:
    """The fused model's numbers under the keys the report, plots and MLflow names read."""
    fused = scored["models"]["fused"]
    per = fused["per_language"]
    out: dict[str, Any] = {
        "n_test": n_test,
        "source_langs": ",".join(source_langs),
        "target_langs": ",".join(c for c in scored["order"] if c not in source_langs),
        **{f"test_{k}": v for k, v in fused["overall"].items() if k != "n"},
        **metrics.transfer_summary(per, source_langs),
        "per_language": per,
    }
    gap = scored["transfer_gap"]["fused"]["mean"]
    if gap is not None:
        out["transfer_gap_ci_low"], out["transfer_gap_ci_high"] = gap["ci_low"], gap["ci_high"]
    gain = scored["fusion_gain"]
    if gain is not None:
        chosen = gain["vs_val_chosen"]["baseline"]
        base = scored["models"][chosen]

        def row(d: dict, b: dict) -> dict[str, float]:
            return {"fused": d["macro_f1"], "baseline": b["macro_f1"], "gain": d["macro_f1"] - b["macro_f1"]}

        out["fusion_gain"] = {
            "best_baseline": chosen,
            "selected_on": "val",
            "baseline_val_macro_f1": {m: scored["val_macro_f1"][m] for m in MODALITIES},
            "overall": row(fused["overall"], base["overall"]),
            "per_language": {c: row(per[c], base["per_language"][c]) for c in per},
        }
    return out


def ablation_view(scored: dict[str, Any]) -> dict[str, Any]:
    """``{modality: {"overall"|per_language: {"macro_f1", "drop", "drop_ci_low", "drop_ci_high"}}}``."""
    out: dict[str, Any] = {}
    for m, d in scored["ablation"].items():

        def entry(diff: dict, f1: float) -> dict[str, float]:
            return {
                "macro_f1": f1,
                "drop": diff["diff"],
                "drop_ci_low": diff["ci_low"],
                "drop_ci_high": diff["ci_high"],
            }

        full = scored["models"]["fused"]
        out[m] = {
            "overall": entry(d["overall"], full["overall"]["macro_f1"] - d["overall"]["diff"]),
            "per_language": {
                c: entry(x, full["per_language"][c]["macro_f1"] - x["diff"])
                for c, x in d["per_language"].items()
            },
        }
    return out


HEADLINE_NUMBERS: tuple[str, ...] = (
    "test_macro_f1",
    "test_accuracy",
    "source_macro_f1",
    "target_macro_f1",
    "transfer_gap",
    "worst_language_macro_f1",
    "fusion_gain_vs_val_chosen",
    "fusion_gain_min_per_language",
    "ece_after",
)


def headline(detail: dict[str, Any]) -> dict[str, Any]:
    """The short ``metrics/eval.json`` (fits ``dvc exp show``) from one seed's detail."""
    gain = detail.get("fusion_gains") or {}
    worst = detail["worst_language"]
    out: dict[str, Any] = {
        "fusion": detail.get("fusion"),
        "test_macro_f1": detail["test_macro_f1"],
        "test_accuracy": detail["test_accuracy"],
        "source_macro_f1": detail["source_macro_f1"],
        "target_macro_f1": detail["target_macro_f1"],
        "transfer_gap": detail["transfer_gap"],
        "worst_language": worst,
        "worst_language_macro_f1": detail["per_language"][worst]["macro_f1"] if worst else None,
        "fusion_gain_vs_val_chosen": gain["vs_val_chosen"]["overall"]["diff"] if gain else None,
        "val_chosen_baseline": gain["vs_val_chosen"]["baseline"] if gain else None,
        "fusion_gain_min_per_language": gain["vs_best_single_per_language"]["min_gain"] if gain else None,
        "ece_after": detail["calibration"]["after"]["overall"]["ece"],
    }
    return out


def seed_summary(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof 1; None with one seed) over seeds of every headline number."""
    mean, std = {}, {}
    for key in HEADLINE_NUMBERS:
        values = np.array([h[key] for h in per_seed.values() if h.get(key) is not None], dtype=np.float64)
        mean[key] = float(values.mean()) if len(values) else None
        std[key] = float(values.std(ddof=1)) if len(values) > 1 else None
    return {
        "seeds": [int(s) for s in per_seed],
        "per_seed": {str(s): h for s, h in per_seed.items()},
        "mean": mean,
        "std": std,
    }


def with_seeds(head: dict[str, Any], seeds: dict[str, Any]) -> dict[str, Any]:
    """The headline plus the seed spread of test macro-F1 (the registered model is the first seed's)."""
    return {
        **head,
        "n_seeds": len(seeds["seeds"]),
        "test_macro_f1_seed_mean": seeds["mean"]["test_macro_f1"],
        "test_macro_f1_seed_std": seeds["std"]["test_macro_f1"],
    }


def ordered(by_group: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """``{"overall", "per_language"}`` with the languages in table order."""
    per = by_group["per_language"]
    return {"overall": by_group["overall"], "per_language": {c: per[c] for c in order if c in per}}


def seed_detail(
    predict: Predict,
    baselines: dict[str, Predict],
    test: Labelled,
    val: Labelled,
    source_langs: list[str],
    params: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(detail dict, the raw scored dict) for one seed's models; ``val`` is the whole val split."""
    src_val = source_val(val, source_langs)
    test_probs = all_probs(predict, baselines, test, masked=True)
    val_probs = all_probs(predict, baselines, src_val, masked=False)
    scored = score_seed(test_probs, val_probs, test, src_val, source_langs, params, seed)
    order = scored["order"]
    cal = scored["calibration"]
    temp = cal["temperature"]
    detail = {
        **legacy_view(scored, source_langs, len(test.y)),
        "ablation": ablation_view(scored),
        "calibration": {
            **cal,
            "before": ordered(cal["before"], order),
            "after": ordered(cal["after"], order),
            "val_nll_before": calibration.nll(src_val.y, val_probs["fused"]),
            "val_nll_after": calibration.nll(
                src_val.y, calibration.apply_temperature(val_probs["fused"], temp)
            ),
        },
        "models": scored["models"],
        "val_macro_f1": scored["val_macro_f1"],
        "temperatures": scored["temperatures"],
        "transfer_gap_by_model": scored["transfer_gap"],
        "fusion_gains": scored["fusion_gain"],
        "fused_vs_baselines": scored["fused_vs"],
        "ece_change": scored["ece_change"],
        "bootstrap": {
            "resamples": int(params["bootstrap"]),
            "ci": float(params["ci"]),
            "seed": seed,
            "unit": "translation group (template_id): a meaning with all its languages, one draw for all",
            "groups": int(len(np.unique(test.groups))),
        },
    }
    return detail, {
        "test_probs": test_probs,
        "scaled": calibration.apply_temperature(test_probs["fused"], temp),
    }


def run_evaluation(
    predict: Predict,
    baselines: dict[str, Predict],
    test: Labelled,
    val: Labelled,
    source_langs: list[str],
    params: dict[str, Any],
    seed: int,
    fusion: str | None = None,
) -> EvalResult:
    """Every number of the report for the registered (first-seed) models, from prediction callables."""
    log.info("evaluate.bootstrap=%d group resamples, evaluate.ci=%s", params["bootstrap"], params["ci"])
    detail, raw = seed_detail(predict, baselines, test, val, source_langs, params, seed)
    detail["fusion"] = fusion
    order = metrics.language_order(test.langs, source_langs)
    log.info("evaluate.missing_rates=%s", params["missing_rates"])
    robust = ablation.missing_rate_robustness(
        predict, test.inputs, test.y, test.langs, params["missing_rates"], seed
    )
    detail["missing_modality"] = {
        m: {k: ordered(scoring.split_groups(d), order) for k, d in by_rate.items()}
        for m, by_rate in robust.items()
    }
    detail["explain"] = contribution_summary(predict, test.inputs, test.langs, order)
    probs, scaled = raw["test_probs"]["fused"], raw["scaled"]
    cal, bins = detail["calibration"], int(params["calibration_bins"])
    confusion = metrics.confusion_matrices(test.y, probs, test.langs)
    return EvalResult(
        metrics=json_safe(detail),
        temperature=json_safe(
            {
                "temperature": cal["temperature"],
                "fitted_on": "val",
                "val_nll_before": cal["val_nll_before"],
                "val_nll_after": cal["val_nll_after"],
                "source_langs": ",".join(source_langs),
            }
        ),
        confusion={"overall": confusion["overall"], **{c: confusion[c] for c in order}},
        reliability={
            "before": calibration.reliability_bins(test.y, probs, bins),
            "after": calibration.reliability_bins(test.y, scaled, bins),
        },
        y_pred=metrics.predictions(probs),
    )


def evaluate_seeds(
    seed_models: dict[int, tuple[Predict, dict[str, Predict]]],
    test: Labelled,
    val: Labelled,
    source_langs: list[str],
    params: dict[str, Any],
    fusion: str | None = None,
) -> tuple[EvalResult, dict[str, Any]]:
    """(the first seed's full result, the seed summary): every seed's models scored the same way.

    The first seed's models are the registered ones; the bootstrap draw is the same for every seed
    (seeded by the first), so seeds differ only by training.
    """
    seeds = list(seed_models)
    first = seeds[0]
    predict, baselines = seed_models[first]
    result = run_evaluation(predict, baselines, test, val, source_langs, params, first, fusion)
    heads = {first: headline(result.metrics)}
    for s in seeds[1:]:
        predict, baselines = seed_models[s]
        detail, _ = seed_detail(predict, baselines, test, val, source_langs, params, first)
        heads[s] = json_safe(headline({**detail, "fusion": fusion}))
        log.info("seed %d: test macro-F1 %.4f", s, heads[s]["test_macro_f1"])
    summary = seed_summary(heads)
    result.metrics["seeds"] = json_safe(summary)
    return result, json_safe(with_seeds(heads[first], summary))
