"""Normalisation and tokenisation: the views the rules and the model read."""

from __future__ import annotations

import pytest

from kefuguard.text import model_tokens, normalize


@pytest.mark.parametrize(
    "raw,compact",
    [
        ("ＡＢＣ１２３", "abc123"),  # full width → half width, lower case
        ("這個東西開發票嗎", "这个东西开发票吗"),  # Traditional → Simplified
        ("加\u200b微\u200d信", "加微信"),  # zero-width characters removed
        ("傻 逼", "傻逼"),  # inserted spaces
        ("加.微.信", "加微信"),  # inserted separators
        ("㊀⓿❶➀", "一011"),  # digit forms NFKC leaves alone
        ("  \t\n ", ""),
        ("", ""),
        ("加我扣扣", "加我qq"),  # a contact homophone is canonicalised...
        ("抠抠搜搜的，小气吧啦", "抠抠搜搜的,小气吧啦"),  # ...but not inside the word for "stingy"
        ("衣服扣扣子的时候", "衣服扣扣子的时候"),  # nor in "doing up buttons"
    ],
)
def test_compact_view(raw: str, compact: str) -> None:
    assert normalize(raw).compact == compact


@pytest.mark.parametrize("raw", ["a\ud800b", "\x00\x01控制字符", "\ufffd乱码", "😊亲😊", "é"])
def test_any_string_normalises_and_maps_back(raw: str) -> None:
    n = normalize(raw)
    assert len(n.compact_map) == len(n.compact)
    for i in range(len(n.compact)):
        start, end = n.span(i, i + 1)
        assert 0 <= start < end <= len(raw)


def test_span_covers_original_characters() -> None:
    raw = "亲，加 微 信"
    n = normalize(raw)
    i = n.compact.index("加微信")
    assert raw[slice(*n.span(i, i + 3))] == "加 微 信"


def test_normalisation_is_idempotent_on_compact_view() -> None:
    for raw in ["這個 ＡＢＣ 加.微.信", "傻 逼 😊", "100% 棉"]:
        once = normalize(raw).compact
        assert normalize(once).compact == once


def test_model_tokens_cover_words_bigrams_and_char_ngrams() -> None:
    toks = model_tokens(normalize("加我微信"))
    assert "w:微信" in toks and "c:加我微" in toks
    assert any(t.startswith("b:") for t in toks)
    assert model_tokens(normalize("")) == []


def test_char_ngrams_mark_the_start_and_end_of_a_message() -> None:
    toks = model_tokens(normalize("看懂了吗？"))
    assert {"c:\x02看", "c:\x02看懂", "c:?\x03", "c:吗?\x03"} <= set(toks)  # NFKC: ？ -> ?
    assert "c:\x02" not in toks and "c:\x03" not in toks  # the marks alone carry nothing
    # The same words closing a reply and inside it are different features.
    assert "c:吗?\x03" not in model_tokens(normalize("看懂了吗？我再发一次"))
    assert model_tokens(normalize("好")) == ["w:好", "c:好", "c:\x02好", "c:好\x03", "c:\x02好\x03"]


def test_input_cannot_forge_the_edge_marks() -> None:
    assert model_tokens(normalize("\x02你好\x03")) == model_tokens(normalize("你好"))


def test_digits_reduced_to_shape() -> None:
    assert model_tokens(normalize("13812345678")) == model_tokens(normalize("13900001111"))


def test_rjieba_matches_jieba_segmentation(repo) -> None:
    """The runtime uses rjieba for speed; it must cut like jieba (the reference)."""
    jieba = pytest.importorskip("jieba")
    import rjieba

    from model.data import load_corpus

    examples, _ = load_corpus()
    texts = [normalize(ex.text).compact for ex in examples[:: max(1, len(examples) // 500)]]
    diff = [t for t in texts if rjieba.cut(t) != jieba.lcut(t, HMM=True)]
    assert len(diff) <= len(texts) * 0.02, diff[:5]


def _views(n):
    return n.text, n.compact, [n.span(i, i + 1) for i in range(len(n.compact))]


def test_fast_normalisation_equals_the_character_path(repo) -> None:
    """The str.translate fast path must give exactly what the per-character path gives."""
    from kefuguard.text import _normalize_fast, _normalize_slow, _t2s
    from model.data import load_corpus

    examples, _ = load_corpus()
    texts = [ex.text for ex in examples] + ["  加 V X  ", "ＡＢＣ　１２３", "傻 逼\t\n", "weixin: abc", "😊亲😊"]
    fast = 0
    for t in texts:
        simplified = _t2s(t)
        n = _normalize_fast(t, simplified)
        if n is not None:
            fast += 1
            assert _views(n) == _views(_normalize_slow(t, simplified)), t
    assert fast > len(texts) * 0.9  # the fast path is the common path
