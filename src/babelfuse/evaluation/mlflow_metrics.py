"""Flat MLflow metric names for the nested eval.json: one number per name, the split in the name.

``test_macro_f1``, ``test_macro_f1.de``, ``transfer_gap``, ``test_macro_f1_without_text.fr``,
``test_macro_f1_audio_missing_50``, ``fusion_gain.ja``, ``test_ece_calibrated.zh``, ``temperature`` ...
so runs can be compared column by column in the MLflow UI.
"""

from __future__ import annotations

from typing import Any


def mlflow_metrics(m: dict[str, Any]) -> dict[str, float]:
    """Flat MLflow metric names: ``test_macro_f1``, ``test_macro_f1.de``, ``transfer_gap``, ``test_ece_calibrated.fr``..."""
    flat: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool) and value is not None:
            flat[name] = float(value)

    for k in (
        "test_accuracy",
        "test_macro_f1",
        "test_accuracy_ci_low",
        "test_accuracy_ci_high",
        "test_macro_f1_ci_low",
        "test_macro_f1_ci_high",
        "source_macro_f1",
        "target_macro_f1",
        "transfer_gap",
    ):
        put(k, m.get(k))
    for code, d in m["per_language"].items():
        for k in (
            "accuracy",
            "macro_f1",
            "accuracy_ci_low",
            "accuracy_ci_high",
            "macro_f1_ci_low",
            "macro_f1_ci_high",
        ):
            put(f"test_{k}.{code}", d[k])
    for mod, d in m["ablation"].items():
        put(f"test_macro_f1_without_{mod}", d["overall"]["macro_f1"])
        for code, g in d["per_language"].items():
            put(f"test_macro_f1_without_{mod}.{code}", g["macro_f1"])
    for mod, by_rate in m["missing_modality"].items():
        for key, d in by_rate.items():
            put(f"test_macro_f1_{mod}_{key}", d["overall"])
            for code, f1 in d["per_language"].items():
                put(f"test_macro_f1_{mod}_{key}.{code}", f1)
    gain = m["fusion_gain"]
    put("fusion_gain", gain["overall"]["gain"])
    for code, d in gain["per_language"].items():
        put(f"fusion_gain.{code}", d["gain"])
    for mod, score in gain["baseline_val_macro_f1"].items():
        put(f"baseline_val_macro_f1.{mod}", score)
    for name, d in (m.get("models") or {}).items():
        if name != "fused":
            put(f"test_macro_f1_{name}", d["overall"]["macro_f1"])
            for code, g in d["per_language"].items():
                put(f"test_macro_f1_{name}.{code}", g["macro_f1"])
    for name, d in (m.get("transfer_gap_by_model") or {}).items():
        for code, g in d["per_language"].items():
            put(f"transfer_gap_{name}.{code}", g["diff"])
    ex = m.get("explain")
    for code, d in ({"overall": ex["overall"], **ex["per_language"]} if ex else {}).items():
        suffix = "" if code == "overall" else f".{code}"
        for mod, v in d["mean_abs_contribution"].items():
            put(f"mean_abs_contrib_{mod}{suffix}", v)
        put(f"flip_share_without_top{suffix}", d["flip_share_without_top"])
    cal = m["calibration"]
    for k in ("temperature", "val_nll_before", "val_nll_after"):
        put(k, cal[k])
    for when, suffix in (("before", ""), ("after", "_calibrated")):
        for k, v in cal[when]["overall"].items():
            put(f"test_{k}{suffix}", v)
        for code, d in cal[when]["per_language"].items():
            for k, v in d.items():
                put(f"test_{k}{suffix}.{code}", v)
    return flat


def numbers(d: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a flat dict (the eval.json headline) as MLflow metrics."""
    return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}
