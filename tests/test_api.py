"""The public API contract: names, types, modes, roles and bad input."""

from __future__ import annotations

import json

import pytest

import kefuguard
from kefuguard import LABELS, BundleError, MessageResult, RuleHit, Scorer

RUDE = "你是不是傻，详情页都看不懂吗"
POLITE = "亲，已经帮您催促快递了哦，请耐心等待"
CONTACT = "加我微信 abc12345 私下转账便宜五十"


def test_public_names() -> None:
    for name in ("Scorer", "MessageResult", "RuleHit", "LABELS", "KefuguardError", "BundleError", "RulesError"):
        assert name in kefuguard.__all__
    assert LABELS == ("abuse", "rude_tone", "misleading", "exaggeration", "pushy_sales",
                      "review_manipulation", "privacy", "off_platform")


def test_result_shape(scorer: Scorer) -> None:
    r = scorer.score(CONTACT)
    assert isinstance(r, MessageResult)
    assert isinstance(r.labels, tuple) and r.labels == tuple(lab for lab in LABELS if lab in r.labels)
    assert set(r.scores) == set(LABELS) and all(0.0 <= p <= 1.0 for p in r.scores.values())
    assert r.hits and all(isinstance(h, RuleHit) for h in r.hits)
    for h in r.hits:
        assert CONTACT[h.start : h.end] == h.text
    assert r.severity in ("low", "medium", "high", "critical")
    assert r.flagged is True
    d = json.loads(json.dumps(r.to_dict(), ensure_ascii=False))
    assert d["labels"] == list(r.labels) and d["flagged"] is True
    assert {"label", "rule_id", "start", "end", "text"} <= set(d["hits"][0])


@pytest.mark.parametrize("mode", ["hybrid", "model", "rules"])
def test_examples_from_the_issue_in_every_mode(scorers, mode: str) -> None:
    s = scorers[mode]
    assert not s.score(POLITE).flagged
    assert s.score(POLITE).severity is None
    if mode != "rules":  # no keyword in it: this is what the model is for
        assert {"abuse", "rude_tone"} & set(s.score(RUDE).labels)
    assert "off_platform" in s.score(CONTACT).labels


def test_rules_mode_has_no_scores_and_model_mode_no_hits(scorers) -> None:
    assert scorers["rules"].score(CONTACT).scores == {}
    assert scorers["model"].score(CONTACT).hits == ()


def test_buyer_messages_never_carry_labels(scorer: Scorer) -> None:
    r = scorer.score("你们这是什么垃圾客服，傻逼", role="buyer")
    assert r.labels == () and not r.flagged and r.severity is None
    assert r.role == "buyer"


@pytest.mark.parametrize("bad", [None, 123, b"\xe4\xbd\xa0", ["list"], 1.5])
def test_non_string_raises_type_error_naming_the_type(scorer: Scorer, bad) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        scorer.score(bad)


def test_score_batch_refuses_a_single_string(scorer: Scorer) -> None:
    with pytest.raises(TypeError, match="single str"):
        scorer.score_batch("一条消息")


def test_score_batch_names_the_bad_element(scorer: Scorer) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got int"):
        scorer.score_batch(["好的", 5])


def test_bad_mode_and_role(scorer: Scorer) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        Scorer.load(mode="fast")
    with pytest.raises(ValueError, match="role must be one of"):
        scorer.score("好的", role="admin")


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u200b\u200b"])
def test_empty_and_whitespace_have_no_labels(scorers, text: str) -> None:
    for s in scorers.values():
        r = s.score(text)
        assert r.labels == () and r.hits == ()


def test_batch_equals_single(scorer: Scorer) -> None:
    texts = [RUDE, POLITE, CONTACT, "", "好评返现五元", "這個真的是全網最低價"]
    assert scorer.score_batch(texts) == [scorer.score(t) for t in texts]
    assert scorer.score_batch([]) == []
    assert scorer.score_batch(iter(texts[:2])) == [scorer.score(t) for t in texts[:2]]


def test_long_message_keeps_late_violations(scorer: Scorer) -> None:
    text = "亲，这款商品的详细参数如下。" * 70_000 + "加我微信 abc12345"  # ~1 MB of UTF-8
    assert len(text.encode("utf-8")) > 1_000_000
    r = scorer.score(text)
    assert "off_platform" in r.labels
    hit = [h for h in r.hits if h.rule_id == "wechat_id"][0]
    assert text[hit.start : hit.end] == hit.text and hit.start > 900_000


def test_missing_bundle_is_a_bundle_error(tmp_path) -> None:
    with pytest.raises(BundleError, match="no bundle.json"):
        Scorer.load(tmp_path)


def test_corrupt_bundle_is_detected(tmp_path, scorer: Scorer) -> None:
    import shutil

    d = tmp_path / "b"
    shutil.copytree(scorer.bundle.path, d)
    with open(d / "model.onnx", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(BundleError, match="SHA-256 does not match"):
        Scorer.load(d)


@pytest.mark.parametrize("vocab", [{"c:a": 0}, ["c:a", "w:two\nlines"], ["c:a", 3]])
def test_malformed_vocabulary_is_a_bundle_error(tmp_path, scorer: Scorer, vocab) -> None:
    import json
    import shutil

    from kefuguard.bundle import file_sha256

    d = tmp_path / "b"
    shutil.copytree(scorer.bundle.path, d)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    info = json.loads((d / "bundle.json").read_text(encoding="utf-8"))
    info["files"]["vocab.json"] = file_sha256(d / "vocab.json")  # a consistent but wrong bundle
    (d / "bundle.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(BundleError, match="vocab.json: expected a JSON list of feature strings"):
        Scorer.load(d)


def test_packed_vocabulary_gives_back_every_feature() -> None:
    from kefuguard.bundle import _Vocab

    tokens = ["w:你好", "c:😀", "b:a|b", "c:x", "w:"]
    v = _Vocab(tokens)
    assert len(v) == 5 and [v[i] for i in range(5)] == tokens and v.tokens() == tokens
    assert list(v.with_prefix("w:")) == [(0, "w:你好"), (4, "w:")]
    assert _Vocab([]).tokens() == [] and len(_Vocab([])) == 0


def test_fast_feature_path_equals_reference_path_on_the_test_split(scorer: Scorer) -> None:
    """Speed never changes results: vectorised features == training-path features."""
    import numpy as np

    from kefuguard.text import normalize
    from model.data import load_corpus

    examples, _ = load_corpus()
    norms = [normalize(ex.text) for ex in examples if ex.split == "test"]
    norms.append(normalize("亲" * 600 + "加我微信"))  # a long message goes through windows
    fast = scorer.bundle.predict(norms)
    ref = scorer.bundle.predict(norms, reference=True)
    assert np.array_equal(fast, ref)


def test_results_do_not_depend_on_batch_composition(scorer: Scorer) -> None:
    from model.data import load_corpus

    texts = [ex.text for ex in load_corpus()[0][:1500]]
    whole = scorer.score_batch(texts)
    assert whole == scorer.score_batch(texts[::-1])[::-1]
    assert whole[:7] == [scorer.score(t) for t in texts[:7]]


def test_edge_features_are_explained_at_the_edges(scorer: Scorer) -> None:
    """Start/end n-grams show as ^/$ and point at the start/end of the original text."""
    text = "自己不会看详情页吗"
    r = scorer.score(text)
    model_items = [ev for ev in r.evidence["rude_tone"] if ev["source"] == "model"]
    edges = [ev for ev in model_items if ev["feature"].startswith("c:^") or ev["feature"].endswith("$")]
    assert edges, model_items
    for ev in edges:
        assert "\x02" not in ev["feature"] and "\x03" not in ev["feature"]
        assert ev["start"] == 0 if ev["feature"].startswith("c:^") else ev["end"] == len(text)
        assert text[ev["start"] : ev["end"]] == ev["text"]
