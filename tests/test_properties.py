"""Property tests (hypothesis), thread safety and very large input."""

from __future__ import annotations

import threading
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kefuguard import ALL_LABELS, LABELS
from kefuguard.text import normalize

# Text the way it arrives: CJK, Latin, digits, full-width forms, emoji, separators,
# invisibles, control characters, lone surrogates, anything.
chat = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),
        st.sampled_from(list("加微信傻逼滚筒去死皮最好返现验证码亲哦！？，。 .-_*VXvxsbQq0123456789①⓿➕🛰😊\u200b\t\n")),
        st.characters(),
    ),
    max_size=80,
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(chat)
def test_any_string_scores_with_spans_in_bounds(scorer, text: str) -> None:
    r = scorer.score(text)
    assert set(r.labels) <= set(LABELS) and r.labels == tuple(lab for lab in LABELS if lab in r.labels)
    assert set(r.scores) <= set(LABELS)
    for h in r.hits:
        assert 0 <= h.start < h.end <= len(text) and text[h.start : h.end] == h.text
    for items in r.evidence.values():
        for ev in items:
            assert 0 <= ev["start"] < ev["end"] <= len(text) and text[ev["start"] : ev["end"]] == ev["text"]
    assert set(r.to_dict()["labels"]) <= set(ALL_LABELS)


@SETTINGS
@given(st.lists(chat, max_size=12))
def test_batch_equals_single(scorer, texts: list[str]) -> None:
    assert scorer.score_batch(texts) == [scorer.score(t) for t in texts]


@SETTINGS
@given(chat)
@example("🈡 豈")  # compatibility characters that fold to Traditional ones (found by hypothesis)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize(text).compact
    assert normalize(once).compact == once


@SETTINGS
@given(chat)
def test_compact_map_is_monotonic_and_in_bounds(text: str) -> None:
    n = normalize(text)
    spans = [n.span(i, i + 1) for i in range(len(n.compact))]
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)


def test_shared_scorer_across_eight_threads(scorer) -> None:
    """One Scorer shared by 8 threads gives exactly the single-thread results."""
    from model.data import load_corpus

    texts = [ex.text for ex in load_corpus()[0][:800]]
    expected = scorer.score_batch(texts)
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            # mix batch and single calls, in a different order per thread
            order = texts[k:] + texts[:k]
            got = scorer.score_batch(order[:400]) + [scorer.score(t) for t in order[400:]]
            results[k] = got[len(texts) - k :] + got[: len(texts) - k]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 37,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, got in results.items():
        assert got == expected, k


def test_ten_megabyte_message_is_linear(scorer) -> None:
    """A 10 MB string scores, and costs about ten times a 1 MB one (linear, not quadratic)."""
    unit = "亲，这款商品参数如下：尺寸 30x40cm，材质 棉。"

    def cost(n_bytes: int) -> float:
        text = unit * (n_bytes // len(unit.encode("utf-8")))
        t = time.perf_counter()
        r = scorer.score(text + "加我微信 abc12345")
        elapsed = time.perf_counter() - t
        assert "off_platform" in r.labels
        return elapsed

    small, big = cost(1_000_000), cost(10_000_000)
    assert big < 25 * small + 1.0, (small, big)
