"""Training machinery: retraining from a user's CSV, parity, thresholds, bad records."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kefuguard import LABELS, Scorer

pytest.importorskip("sklearn")

from model import train as train_mod  # noqa: E402
from model.data import load_corpus, load_file  # noqa: E402


def _sample_csv(path: Path, per_label: int = 40, negatives: int = 160, seed: int = 1) -> Path:
    """A small user CSV (text,labels with '|') drawn from the shipped corpus."""
    examples, _ = load_corpus()
    rng = random.Random(seed)
    rng.shuffle(examples)
    picked, seen = [], set()
    for lab in LABELS:
        picked += [ex for ex in examples if lab in ex.labels and ex.id not in seen][:per_label]
        seen.update(ex.id for ex in picked)
    picked += [ex for ex in examples if not ex.labels][:negatives]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "labels"])
        for ex in picked:
            w.writerow([ex.text, "|".join(ex.labels)])
    return path


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("train")
    data = _sample_csv(d / "mine.csv")
    out = d / "bundles" / "mine"
    rc = train_mod.main(["--data", str(data), "--no-base", "--out", str(out), "--quiet", "--seed", "3"])
    assert rc == 0
    return data, out


def test_retrain_from_csv_end_to_end(small_bundle) -> None:
    _, out = small_bundle
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "vocab.json", "bundle.json", "metrics.json"}
    info = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    assert info["labels"] == list(LABELS)
    assert info["parity_max_abs_diff"] <= 1e-4
    assert info["training_data"]["sources"] == ["mine.csv"]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for lab in LABELS:
        assert set(metrics["test"]["hybrid"]["labels"][lab]) == {"precision", "recall", "f1", "support"}
    s = Scorer.load(out)
    assert "off_platform" in s.score("加我微信 abc12345 私下转账便宜五十").labels


def test_cli_uses_a_retrained_bundle(small_bundle) -> None:
    _, out = small_bundle
    p = subprocess.run([sys.executable, "-m", "kefuguard.cli", "score", "--bundle", str(out), "好评返现五元哦"],
                       capture_output=True, text=True, check=True)
    assert "review_manipulation" in json.loads(p.stdout)["labels"]


def test_training_is_deterministic(small_bundle, tmp_path: Path) -> None:
    data, out = small_bundle
    again = tmp_path / "again"
    assert train_mod.main(["--data", str(data), "--no-base", "--out", str(again), "--quiet", "--seed", "3"]) == 0
    for name in ("model.onnx", "vocab.json"):
        a = hashlib.sha256((out / name).read_bytes()).hexdigest()
        b = hashlib.sha256((again / name).read_bytes()).hexdigest()
        assert a == b, name


def test_onnx_matches_sklearn(small_bundle) -> None:
    """The runtime path (Python lookup + onnxruntime) against scikit-learn."""
    data, _ = small_bundle
    examples, errors = load_file(data)
    assert not errors
    model = train_mod.fit(examples, seed=0, quiet=True)
    idf, weights, bias, vocab = model.export_arrays()
    from kefuguard.bundle import Bundle
    from kefuguard.text import normalize
    from model.export import build_graph

    graph = build_graph(idf, weights, bias, {"labels": json.dumps(LABELS)})
    texts = [ex.text for ex in load_corpus()[0][:400]] + ["", "!!!", "a" * 3000]
    ref = model.predict_proba(train_mod._tokens(texts))
    import onnxruntime as ort

    b = Bundle(Path("."), {}, LABELS, {}, {}, ort.InferenceSession(graph), list(vocab), True)
    got = b.predict([normalize(t) for t in texts[:-1]])
    assert np.max(np.abs(ref[:-1] - got)) < 1e-5


def test_export_refuses_beyond_parity_tolerance(small_bundle, tmp_path: Path, monkeypatch) -> None:
    data, _ = small_bundle
    examples, _ = load_file(data)
    monkeypatch.setattr(train_mod, "PARITY_TOLERANCE", -1.0)
    out = tmp_path / "refused"
    with pytest.raises(RuntimeError, match="disagrees with the trained model"):
        train_mod.train_bundle(examples, out, quiet=True)
    assert not out.exists()
    assert not any(p.name.startswith(".bundle-") for p in tmp_path.iterdir())


def test_thresholds_follow_the_precision_policy() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, size=(400, len(LABELS)))
    probs = np.clip(gold * 0.6 + rng.normal(0.2, 0.15, size=gold.shape), 0, 1)
    th = train_mod.choose_thresholds(probs, gold)
    for k, lab in enumerate(LABELS):
        flagged = probs[:, k] >= th[lab]
        assert (gold[flagged, k].mean()) >= train_mod.PRECISION_TARGET
        assert 0.2 <= th[lab] <= 0.95


def test_thresholds_are_applied(small_bundle, tmp_path: Path) -> None:
    import shutil

    from kefuguard.bundle import file_sha256

    _, out = small_bundle
    d = tmp_path / "b"
    shutil.copytree(out, d)
    info = json.loads((d / "bundle.json").read_text(encoding="utf-8"))
    text = "加我微信 abc12345 私下转账便宜五十"
    base = Scorer.load(d, mode="model").score(text)
    info["thresholds"] = {lab: 1.01 for lab in LABELS}  # nothing can reach it
    (d / "bundle.json").write_text(json.dumps(info), encoding="utf-8")
    assert file_sha256(d / "model.onnx") == info["files"]["model.onnx"]
    r = Scorer.load(d, mode="model").score(text)
    assert r.labels == () and r.scores == base.scores


def test_bad_records_are_reported_with_file_and_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        "text,labels\n好的亲,\n,abuse\n你个傻逼,abuse|insult\n".encode("utf-8")
        + b"\xff\xfe,abuse\n"
        + "\"多行\n文本\",rude_tone\n".encode("utf-8")
    )
    examples, errors = load_file(bad)
    assert [ex.text for ex in examples] == ["好的亲", "多行\n文本"]
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in errors] == ["3", "4", "5"]
    assert "empty" in errors[0] and "unknown label(s) ['insult']" in errors[1] and "not valid UTF-8" in errors[2]
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"text": "好的", "labels": []}\n{oops\n{"text": "", "labels": []}\n'
                  '{"text": "x", "labels": ["harassment"]}\n{"text": 5, "labels": []}\n', encoding="utf-8")
    examples, errors = load_file(jl)
    assert len(examples) == 1
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in errors] == ["2", "3", "4", "5"]
    assert "invalid JSON" in errors[0] and "empty" in errors[1]
    assert "conversation-level" in errors[2] and "must be a string" in errors[3]


def test_strict_stops_and_default_skips(tmp_path: Path, capsys) -> None:
    data = _sample_csv(tmp_path / "ok.csv", per_label=25, negatives=80)
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("坏标签的一行,not_a_label\n")
    out = tmp_path / "strict"
    assert train_mod.main(["--data", str(data), "--no-base", "--strict", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "ok.csv:" in err and "unknown label(s) ['not_a_label']" in err
    assert not out.exists()


def test_rude_tone_threshold_ignores_abusive_messages() -> None:
    """Insulting messages scored high on rude_tone do not push its threshold up."""
    k_rude, k_abuse = LABELS.index("rude_tone"), LABELS.index("abuse")
    n = 300
    gold = np.zeros((n, len(LABELS)), dtype=int)
    probs = np.full((n, len(LABELS)), 0.05)
    gold[:100, k_rude] = 1
    probs[:100, k_rude] = 0.6  # true rude_tone at 0.6
    gold[100:200, k_abuse] = 1
    probs[100:200, k_rude] = 0.7  # abuse messages that also read as rude
    th = train_mod.choose_thresholds(probs, gold)
    assert th["rude_tone"] <= 0.6
    gold2 = gold.copy()
    gold2[100:200, k_abuse] = 0  # the same scores on acceptable messages must raise it
    assert train_mod.choose_thresholds(probs, gold2)["rude_tone"] > 0.7 - 1e-9


def test_negatives_are_weighted_by_subset() -> None:
    """A plain negative weighted up pulls its own score down; an unmarked one does not move."""
    from dataclasses import replace

    examples, _ = load_corpus()
    rng = random.Random(5)
    rng.shuffle(examples)
    train = []
    for lab in LABELS:
        train += [ex for ex in examples if ex.labels == (lab,)][:30]
    plain = [ex for ex in examples if ex.subset == "plain_negative"][:120]
    probe = [ex.text for ex in plain[:40]]
    tokens = train_mod._tokens(probe)
    scores = {}
    for w in (1.0, 8.0):
        model = train_mod.fit(train + plain, quiet=True, plain_negative_weight=w, seed=0)
        scores[w] = model.predict_proba(tokens).max(axis=1).mean()
    assert scores[8.0] < scores[1.0] - 0.01
    unmarked = [replace(ex, subset="") for ex in plain]
    a = train_mod.fit(train + unmarked, quiet=True, plain_negative_weight=1.0).predict_proba(tokens)
    b = train_mod.fit(train + unmarked, quiet=True, plain_negative_weight=8.0).predict_proba(tokens)
    assert np.allclose(a, b)
