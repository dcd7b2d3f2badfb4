"""Fusion benchmark (a script, not a test): the seven fusion methods and the baselines on the same data.

    .venv/bin/python benchmarks/fusion.py --data with|without [--size default] [--seeds 5] [--trials 6]
        [--epochs 60] [--out benchmarks/results/fusion.json] [--markdown]

Data: the posts the generator plans for ``data.size`` (``params.yaml``, the ``data`` section), with
its interactions (``--data with``, ``data.interactions`` as in params.yaml) or without them
(``--data without``: irony and reliability 0). Features are the generator's latent variables as an
oracle encoder would see them (``ceiling.oracle_features``: text = the template key, one-hot, plus
``--text-noise`` Gaussian noise standing in for an imperfect encoder; image = the three face cues;
audio = the four prosody settings and the degraded-voice flag; standardised on train), so the
comparison is about *fusion*, and the Bayes-optimal ceiling of the noise-free latents, an upper
bound for every model, is paired with each on the same test posts (:mod:`babelfuse.data.ceiling`).

Methods: every ``babelfuse.fusion.FUSIONS`` layer, each single modality, the LogisticRegression on all
features (C chosen on val) and late fusion of the temperature-calibrated single-modality models.
Budget: every method gets the same ``--trials`` configurations (one seeded random list: hidden,
dropout, learning rate, batch size, modality dropout; logreg: ``--trials`` values of C), chosen on val
macro-F1 with the first seed, then trained with each of ``--seeds`` seeds. Test macro-F1 = mean over
seeds; CIs from one group bootstrap over test meanings (``template_id``) shared by every method, so
each difference (vs the best method, vs the ceiling) is paired. Nothing on test decides anything.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from babelfuse.data import ceiling, latent, plan  # noqa: E402
from babelfuse.evaluation import bootstrap  # noqa: E402
from babelfuse.evaluation.calibration import apply_temperature, fit_temperature  # noqa: E402
from babelfuse.evaluation.metrics import macro_f1  # noqa: E402
from babelfuse.evaluation.results_doc import fusion_benchmark_table  # noqa: E402
from babelfuse.fusion import FUSIONS  # noqa: E402
from babelfuse.paths import MODALITIES  # noqa: E402
from babelfuse.training.baselines import concatenated, fit_single_modality  # noqa: E402
from babelfuse.training.fit import fit_model, model_inputs  # noqa: E402

log = logging.getLogger("benchmarks.fusion")
SINGLE = tuple(f"{m}_only" for m in MODALITIES)


def bench_data(data: dict[str, Any], with_interactions: bool) -> dict[str, Any]:
    data = copy.deepcopy(data)
    if not with_interactions:
        data["interactions"] = {"irony": 0.0, "reliability": 0.0}
    return data


def configs(base: dict[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    """The shared tuning budget: ``trials`` seeded random train configurations."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        out.append(
            {
                **base,
                "hidden": int(rng.choice([16, 32, 64])),
                "dropout": float(np.round(rng.uniform(0.0, 0.3), 3)),
                "modality_dropout": float(np.round(rng.uniform(0.0, 0.3), 3)),
                "learning_rate": float(np.round(np.exp(rng.uniform(np.log(1e-3), np.log(1e-2))), 5)),
                "batch_size": int(rng.choice([16, 32, 64])),
            }
        )
    return out


def _fit(
    method: str, params: dict[str, Any], splits: dict[str, Any], seed: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """(val macro-F1, val probabilities, test probabilities) of one method trained once."""
    train, val, test = splits["train"], splits["val"], splits["test"]
    if method in SINGLE:
        result = fit_single_modality(method.removesuffix("_only"), params, train, val, seed)
    else:
        result = fit_model({**params, "fusion": method}, train, val, seed)
    predict = result.model.predict_on_batch
    return (
        result.val_macro_f1,
        np.asarray(predict(model_inputs(val))),
        np.asarray(predict(model_inputs(test))),
    )


def run_keras(
    method: str, grid: list[dict[str, Any]], splits: dict[str, Any], seeds: list[int]
) -> dict[str, Any]:
    """Tune on val with the first seed, then train the chosen configuration with every other seed."""
    tried = [_fit(method, params, splits, seeds[0]) for params in grid]
    best = int(np.argmax([t[0] for t in tried]))
    runs = [tried[best]] + [_fit(method, grid[best], splits, s) for s in seeds[1:]]
    return {
        "val_macro_f1": tried[best][0],
        "params": {
            k: grid[best][k] for k in ("hidden", "dropout", "modality_dropout", "learning_rate", "batch_size")
        },
        "val_probs": [r[1] for r in runs],
        "test_probs": [r[2] for r in runs],
    }


def run_logreg(trials: int, splits: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """LogisticRegression on all features, C from ``trials`` log-spaced values chosen on val."""
    train, val, test = splits["train"], splits["val"], splits["test"]
    scored = []
    for c in np.logspace(-3, 2, trials):
        model = LogisticRegression(C=float(c), max_iter=3000).fit(concatenated(train), train["label"])
        probs = np.zeros((len(val["label"]), 3))
        probs[:, model.classes_] = model.predict_proba(concatenated(val))
        scored.append((macro_f1(val["label"], probs.argmax(axis=1)), float(c), model))
    value, c, model = max(scored, key=lambda t: t[0])
    probs = np.zeros((len(test["label"]), 3))
    probs[:, model.classes_] = model.predict_proba(concatenated(test))
    return {"val_macro_f1": value, "params": {"C": c}, "test_probs": [probs] * len(seeds)}


def late_calibrated(singles: dict[str, Any], splits: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Product of the single-modality models' test probabilities, each temperature-scaled on val."""
    y_val = splits["val"]["label"]
    out = []
    for i in range(len(seeds)):
        product = np.ones_like(singles[SINGLE[0]]["test_probs"][i])
        for m in SINGLE:
            t = fit_temperature(y_val, singles[m]["val_probs"][i])
            product *= apply_temperature(singles[m]["test_probs"][i], t)
        out.append(product / product.sum(axis=1, keepdims=True))
    return {"val_macro_f1": None, "params": {"uses": list(SINGLE)}, "test_probs": out}


def summarise(
    results: dict[str, Any],
    test: dict[str, np.ndarray],
    frame_test: Any,
    data: dict[str, Any],
    n_boot: int,
    level: float,
) -> dict[str, Any]:
    """Per method: seed mean ± std, group-bootstrap CI, paired differences vs the best and the ceiling."""
    y = test["label"]
    draws = bootstrap.draw_weights(bootstrap.group_ids(test), n_boot, seed=0)
    info, inter = plan.informativeness(data), latent.interactions(data)
    lik, prior = ceiling.likelihoods(frame_test, info, inter), ceiling.state_prior(info, inter)
    bayes = ceiling.posteriors(lik, prior, MODALITIES).argmax(axis=1)
    late = ceiling.posteriors(lik, prior, MODALITIES, late=True).argmax(axis=1)

    def mean_f1(preds: list[np.ndarray]):
        return lambda w: np.mean([bootstrap.weighted_macro_f1(w, (y, p)) for p in preds], axis=0)

    preds = {name: [p.argmax(axis=1) for p in r["test_probs"]] for name, r in results.items()}
    points = {name: float(mean_f1(p)(bootstrap.ones(len(y)))[0]) for name, p in preds.items()}
    best = max((n for n in points if n in FUSIONS or n in ("logreg", "late_calibrated")), key=points.get)
    methods = {}
    for name, r in results.items():
        per_seed = [macro_f1(y, p.argmax(axis=1)) for p in r["test_probs"]]
        low, high = bootstrap.percentile_ci(mean_f1(preds[name])(draws), level)
        methods[name] = {
            "test_macro_f1": round(points[name], 4),
            "seed_std": round(float(np.std(per_seed)), 4),
            "per_seed": [round(v, 4) for v in per_seed],
            "ci_low": round(low, 4),
            "ci_high": round(high, 4),
            "val_macro_f1": None if r["val_macro_f1"] is None else round(float(r["val_macro_f1"]), 4),
            "params": r["params"],
            "vs_best": _rounded(bootstrap.diff_ci(mean_f1(preds[name]), mean_f1(preds[best]), draws, level)),
            "vs_ceiling": _rounded(bootstrap.diff_ci(mean_f1(preds[name]), mean_f1([bayes]), draws, level)),
        }
    ceil = {
        "bayes": bootstrap.ci(bootstrap.weighted_macro_f1, (y, bayes), draws, level),
        "late": bootstrap.ci(bootstrap.weighted_macro_f1, (y, late), draws, level),
    }
    return {"best": best, "methods": methods, "ceiling_on_test": {k: _rounded(v) for k, v in ceil.items()}}


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    data = bench_data({**params["data"], "size": args.size}, args.data == "with")
    seed = int(params["seed"])
    frame = plan.latent_frame(plan.plan_posts(data, seed))
    frame = frame[frame["split"].isin(["train", "val", "test"])].reset_index(drop=True)
    splits = ceiling.oracle_features(frame, seed, {"text": args.text_noise, "image": 0.0, "audio": 0.0})
    base = {**params["train"], "epochs": args.epochs}
    grid = configs(base, args.trials, seed)
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for method in (*FUSIONS, *SINGLE):
        log.info("%s: %d configurations, then %d seeds", method, len(grid), len(seeds))
        results[method] = run_keras(method, grid, splits, seeds)
    results["logreg"] = run_logreg(args.trials, splits, seeds)
    results["late_calibrated"] = late_calibrated(results, splits, seeds)
    summary = summarise(
        results,
        splits["test"],
        frame[frame["split"] == "test"].reset_index(drop=True),
        data,
        args.bootstrap,
        0.95,
    )
    return {
        "config": {
            "data": args.data,
            "size": args.size,
            "interactions": data["interactions"],
            "informativeness": data["informativeness"],
            "seeds": seeds,
            "trials": args.trials,
            "epochs": args.epochs,
            "rows": {s: int(len(splits[s]["label"])) for s in splits},
            "features": "oracle features from the generator's latent variables (see the module docstring)",
            "text_noise": args.text_noise,
        },
        **summary,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["with", "without"], default="with")
    parser.add_argument("--size", default="default", help="a key of params.yaml data.sizes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--text-noise", type=float, default=0.5, help="SD of the noise on the one-hot text key"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fusion.json")
    parser.add_argument("--markdown", action="store_true", help="also print the docs table")
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    previous[args.data] = result  # one file, one entry per data variant ("with", "without")
    args.out.write_text(json.dumps(previous, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s in %.0f s", args.out, result["seconds"])
    if args.markdown:
        print("\n".join(fusion_benchmark_table(result)))


if __name__ == "__main__":
    main()
