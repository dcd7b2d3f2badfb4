"""The generative model's ceiling, its interactions, and what a fused model can learn from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from babelfuse.data import ceiling, latent, plan
from babelfuse.evaluation.metrics import macro_f1

REPO = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
N = 2000
NOISE = {"text": 1.0, "image": 1.0, "audio": 0.5}  # SD added to the standardised oracle features


def data_params(**changes) -> dict:
    data = copy.deepcopy(PARAMS["data"])
    data.update(changes)
    return data


def scores(data: dict, seed: int = 1) -> dict:
    return ceiling.compute_ceiling(data, seed, n=N)["subsets"]


def test_without_interactions_late_fusion_is_optimal_and_with_them_it_is_not() -> None:
    plain = scores(data_params(interactions={"irony": 0.0, "reliability": 0.0}))
    for name, entry in plain.items():
        if "late" in entry:
            assert entry["late"] == pytest.approx(entry["bayes"], abs=1e-9), name
    ironic = scores(data_params(interactions={"irony": 0.5, "reliability": 0.3}))
    assert ironic["text+audio"]["bayes"] > ironic["text+audio"]["late"] + 0.02
    assert ironic["text+image+audio"]["bayes"] > ironic["text+image+audio"]["late"] + 0.005


def test_more_modalities_never_lower_the_ceiling() -> None:
    result = scores(data_params())
    full = result["text+image+audio"]["bayes"]
    for name, entry in result.items():
        assert entry["bayes"] <= full + 0.01, name  # up to sampling noise of N posts


def test_uninformative_media_carry_no_class_information() -> None:
    """With informativeness 0 the exact image/audio posteriors are flat: the Bayes rule cannot beat chance."""
    info = {"text": 0.5, "image": 0.0, "audio": 0.0}
    inter = latent.Interactions(irony=0.0, reliability=0.0)
    labels, latents = latent.sample_latents(N, info, inter, seed=3)
    lik = ceiling.likelihoods(ceiling.latent_table(latents), info, inter)
    prior = ceiling.state_prior(info, inter)
    for modality in ("image", "audio"):
        post = ceiling.posteriors(lik, prior, (modality,))
        np.testing.assert_allclose(post, 1.0 / 3.0, atol=1e-9)


def test_ceiling_json_names_every_subset(tmp_path: Path) -> None:
    out = tmp_path / "ceiling.json"
    ceiling.write_ceiling(out, data_params(), seed=2)
    written = json.loads(out.read_text())
    assert set(written["subsets"]) == {"+".join(s) for s in ceiling.subsets()}
    assert all(0.0 < v["bayes"] <= 1.0 for v in written["subsets"].values())


@pytest.fixture(scope="module")
def oracle_tiny() -> tuple[dict, dict]:
    """Oracle features of the tiny-sized plan with every modality informative, and one with none.

    Noise stands for imperfect encoders: without it the face cues alone classify almost perfectly.
    """
    out = {}
    for name, share in (("informative", 1.0), ("uninformative", 0.0)):
        info = {"text": 1.0, "image": share, "audio": share}
        data = data_params(size="tiny", informativeness=info, interactions={"irony": 0.0, "reliability": 0.0})
        frame = plan.latent_frame(plan.plan_posts(data, seed=42))
        frame = frame[frame.split.isin(["train", "val", "test"])].reset_index(drop=True)
        out[name] = ceiling.oracle_features(frame, seed=0, noise=NOISE)
    return out


def _test_f1(fit_result, split: dict) -> float:
    from babelfuse.training.fit import model_inputs

    return macro_f1(
        split["label"], np.asarray(fit_result.model.predict_on_batch(model_inputs(split))).argmax(1)
    )


@pytest.mark.slow  # six small Keras fits
def test_fused_model_beats_each_single_modality_and_uninformative_media_score_at_chance(oracle_tiny) -> None:
    from babelfuse.training.baselines import fit_single_modality
    from babelfuse.training.fit import fit_model

    params = {**PARAMS["train"], "fusion": "concat", "epochs": 40, "patience": 10, "modality_dropout": 0.0}
    splits = oracle_tiny["informative"]
    fused = _test_f1(fit_model(params, splits["train"], splits["val"], seed=0), splits["test"])
    singles = {
        m: _test_f1(fit_single_modality(m, params, splits["train"], splits["val"], seed=0), splits["test"])
        for m in ("text", "image", "audio")
    }
    assert all(fused > f1 for f1 in singles.values()), (fused, singles)
    blind = oracle_tiny["uninformative"]
    for m in ("image", "audio"):
        f1 = _test_f1(fit_single_modality(m, params, blind["train"], blind["val"], seed=0), blind["test"])
        assert f1 < 0.5, (m, f1)  # chance is 1/3
        assert singles[m] > f1 + 0.15, (m, singles[m], f1)  # the same model on informative media
