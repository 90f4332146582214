"""The shipped corpus passes its checker; splits are stable."""

from __future__ import annotations

import io

from model.data import check, load_corpus, split_of


def test_corpus_checker_passes() -> None:
    out = io.StringIO()
    problems = check(out=out)
    assert problems == 0, out.getvalue()[-3000:]


def test_splits_are_a_stable_hash_of_the_group() -> None:
    assert split_of("abuse-g0001") == split_of("abuse-g0001")
    examples, _ = load_corpus()
    by_group = {}
    for ex in examples:
        assert by_group.setdefault(ex.group, ex.split) == ex.split
    shares = {s: sum(ex.split == s for ex in examples) / len(examples) for s in ("train", "dev", "test")}
    assert 0.6 < shares["train"] < 0.8 and 0.08 < shares["dev"] < 0.22 and 0.08 < shares["test"] < 0.22
