"""The planned splits: content held out by meaning, balanced classes, gate/fewshot, stable seeds."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import yaml

from babelfuse.data import generate, plan, text_gen
from babelfuse.errors import BabelfuseError
from babelfuse.labels import LABELS

REPO = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def data_params(**changes) -> dict:
    data = copy.deepcopy(PARAMS["data"])
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def tiny() -> tuple[dict, list[plan.Post]]:
    data = data_params(size="tiny")
    return data, plan.plan_posts(data, seed=42)


def test_test_and_gate_content_never_occurs_in_train_or_val(tiny) -> None:
    data, posts = tiny
    frame = plan.manifest_frame(posts)
    by_split = {s: frame[frame.split == s] for s in ("train", "val", "test", "gate", "fewshot")}
    seen = set(by_split["train"].template_id) | set(by_split["val"].template_id)
    seen_text = set(by_split["train"].text) | set(by_split["val"].text)
    for held_out in ("test", "gate"):
        part = by_split[held_out]
        assert not seen & set(part.template_id), held_out
        assert not seen_text & set(part.text), held_out
    assert not set(by_split["fewshot"].template_id) & (
        set(by_split["test"].template_id) | set(by_split["gate"].template_id)
    )
    assert not set(by_split["test"].template_id) & set(by_split["gate"].template_id)


def test_pools_partition_every_template_list() -> None:
    shares = plan.content_shares(PARAMS["data"])
    pools = plan.content_pools(42, shares)
    shape = text_gen.structure()
    for key in text_gen.TEMPLATE_KEYS:
        parts = [set(pools[p][key]) for p in plan.POOLS]
        assert all(parts), key  # every pool has content of every key
        assert sum(len(p) for p in parts) == len(set().union(*parts)) == len(shape.template_slots[key])
    assert plan.content_pools(42, shares) == pools
    assert plan.content_pools(43, shares) != pools


def test_a_post_uses_only_its_pool_templates(tiny) -> None:
    data, posts = tiny
    pools = plan.content_pools(42, plan.content_shares(data))
    for post in posts:
        assert post.template_index in pools[plan.POOL_OF[post.split]][post.latent.text_key], post.sample_id


def test_split_sizes_languages_and_balance(tiny) -> None:
    data, posts = tiny
    sizes = plan.split_sizes(data)
    frame = plan.manifest_frame(posts)
    targets = set(data["languages"]) - set(data["source_langs"])
    assert frame.sample_id.is_unique
    for split in ("train", "val"):
        part = frame[frame.split == split]
        assert len(part) == sizes[split] and set(part.lang) == set(data["source_langs"])
    for split in ("test", "gate"):
        part = frame[frame.split == split]
        assert set(part.lang) == set(data["languages"])
        for _lang, rows in part.groupby("lang"):
            assert len(rows) == sizes[f"{split}_per_lang"]
            assert Counter(rows.label) == {label: sizes[f"{split}_per_lang"] // 3 for label in LABELS}
        groups = part.assign(g=part.sample_id.str.rsplit("-", n=1).str[-1]).groupby("g")
        assert all(g.label.nunique() == 1 and g.template_id.nunique() == 1 for _, g in groups)
    fewshot = frame[frame.split == "fewshot"]
    assert set(fewshot.lang) == targets
    assert all(len(rows) == sizes["fewshot_per_lang"] for _, rows in fewshot.groupby("lang"))


def test_too_few_templates_for_the_pools_is_a_clear_error() -> None:
    with pytest.raises(BabelfuseError, match=r"templates.filler has 3 entries: need at least 4"):
        plan.partition_counts(
            3, plan.content_shares(PARAMS["data"]), "every language file's templates.filler"
        )
    with pytest.raises(BabelfuseError, match=r"data.content_split.gate must be a number > 0"):
        plan.content_shares({"content_split": {"trainval": 1, "gate": 0, "test": 1, "fewshot": 1}})


def test_every_language_file_has_the_same_counts() -> None:
    counts = {
        code: {k: len(v) for k, v in text_gen.load_language(code).templates.items()}
        for code in text_gen.available_languages()
    }
    assert len({tuple(sorted(c.items())) for c in counts.values()}) == 1, counts


MICRO = data_params(
    size="micro",
    sizes={"micro": {"train": 3, "val": 3, "test_per_lang": 3, "gate_per_lang": 3, "fewshot_per_lang": 3}},
    image_size=32,
)


def test_adding_a_language_leaves_the_other_languages_posts_and_media_identical(tmp_path: Path) -> None:
    without = data_params(**{**MICRO, "languages": ["en", "ja"]})
    with_fr = data_params(**{**MICRO, "languages": ["en", "fr", "ja"]})  # inserted before ja
    a = {p.sample_id: p for p in plan.plan_posts(without, seed=9)}
    b = {p.sample_id: p for p in plan.plan_posts(with_fr, seed=9)}
    assert set(a) < set(b) and any(sid.split("-")[1] == "fr" for sid in set(b) - set(a))
    assert all(a[sid] == b[sid] for sid in a)
    generate.generate_dataset(without, 9, tmp_path / "a", workers=1)
    generate.generate_dataset(with_fr, 9, tmp_path / "b", workers=1)
    for sid in a:
        for rel in (f"images/{sid}.png", f"audio/{sid}.wav"):
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
