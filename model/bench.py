"""Benchmark the scoring hot path and print a table.

Usage::

    python -m model.bench [--bundle PATH] [--repeats 5] [--json out.json]

Measures, on one thread, on short messages from the corpus's test split (about
60% of them violations, which also get explanations): ``score_batch``
messages/second at batch 1, 64 and 4096, and at 4096 on the clean messages only
(the common case in real traffic); single-message p50/p99
latency of ``score``; cold start (import + load + first score in a fresh
process); peak RSS of a fresh process that scores 4096 messages; the model step
through onnxruntime against scikit-learn's ``predict_proba`` with the same
weights on the same inputs; and a pure Aho-Corasick keyword pass over the same
texts (the floor). Every figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kefuguard import Scorer
from kefuguard.bundle import default_bundle_dir
from kefuguard.text import model_tokens, normalize

from .data import load_corpus

__all__ = ["main", "run"]


def _texts(n: int) -> list[str]:
    examples, _ = load_corpus()
    base = [ex.text for ex in examples if ex.split == "test"]
    out = []
    while len(out) < n:
        out.extend(base)
    return out[:n]


def _rate(fn, n_msgs: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_msgs / statistics.median(times)


# Peak RSS of the child itself. Linux carries ru_maxrss across fork+exec, so a
# child started from this (large) benchmarking process reported the parent's
# size; VmHWM belongs to the child's own address space.
_PEAK_RSS_MB = """
try:
    _hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]
    print(int(_hwm.split()[1]) / 1024)
except (OSError, IndexError):
    import resource
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _fresh(code: str, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(float(p.stdout.strip().splitlines()[-1]))
    return out


def _sklearn_reference(bundle_dir: Path):
    """Rebuild the bundle's model as scikit-learn objects (for the ratio only)."""
    import onnx
    from onnx import numpy_helper
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from .train import _identity

    m = onnx.load(str(bundle_dir / "model.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    vocab = json.loads((bundle_dir / "vocab.json").read_text(encoding="utf-8"))
    vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, vocabulary={t: i for i, t in enumerate(vocab)})
    vec.fit([[]])  # sets up the fitted state; idf_ is replaced below
    vec.idf_ = inits["idf"].astype(np.float64)
    clf = LogisticRegression()
    clf.coef_ = inits["W"].T.astype(np.float64)
    clf.intercept_ = inits["b"].astype(np.float64)
    clf.classes_ = np.array([0, 1])
    return vec, clf


def run(bundle: str | None = None, repeats: int = 5) -> dict[str, Any]:
    """Run every measurement; return the figures as a dict."""
    bundle_dir = Path(bundle) if bundle else default_bundle_dir()
    scorer = Scorer.load(bundle_dir)
    texts = _texts(4096)
    scorer.score_batch(texts[:256])  # warm caches (OpenCC, rjieba dictionary, lru caches)
    res: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "messages": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "bundle_mb": round(sum(f.stat().st_size for f in bundle_dir.iterdir()) / 1e6, 2),
    }
    for b in (1, 64, 4096):
        n = 4096 if b > 1 else 1024
        chunks = [texts[i : i + b] for i in range(0, n, b)]
        res[f"batch_{b}_msgs_per_s"] = round(_rate(lambda: [scorer.score_batch(c) for c in chunks], n, repeats))
    lat = []
    for t in texts[:2000]:
        a = time.perf_counter()
        scorer.score(t)
        lat.append((time.perf_counter() - a) * 1e3)
    res["single_p50_ms"] = round(float(np.percentile(lat, 50)), 4)
    res["single_p99_ms"] = round(float(np.percentile(lat, 99)), 4)

    code = (
        "import time; t=time.perf_counter(); from kefuguard import Scorer; "
        f"s=Scorer.load({str(bundle_dir)!r}); s.score('亲，加我微信私聊'); print(time.perf_counter()-t)"
    )
    res["cold_start_s"] = round(statistics.median(_fresh(code, repeats)), 3)
    code = (
        "import json; from kefuguard import Scorer; "
        f"s=Scorer.load({str(bundle_dir)!r}); texts=json.load(open({str(_dump(texts))!r}, encoding='utf-8')); "
        f"s.score_batch(texts); exec({_PEAK_RSS_MB!r})"
    )
    res["peak_rss_mb"] = round(statistics.median(_fresh(code, max(1, repeats // 2))), 1)

    # Clean traffic: most real messages are acceptable and need no explanation.
    clean = [t for t, r in zip(texts, scorer.score_batch(texts)) if not r.flagged]
    clean = (clean * (4096 // max(1, len(clean)) + 1))[:4096]
    res["batch_4096_clean_msgs_per_s"] = round(_rate(lambda: scorer.score_batch(clean), len(clean), repeats))

    # Model step: normalised text -> probabilities. The runtime's path (vectorised
    # features + sparse ONNX graph) against scikit-learn with the same weights
    # (model_tokens + TfidfVectorizer.transform + predict_proba).
    norms = [normalize(t) for t in texts]
    bundle_obj = scorer.bundle
    onnx_rate = _rate(lambda: bundle_obj.predict(norms), len(norms), repeats)
    res["model_step_onnx_msgs_per_s"] = round(onnx_rate)
    try:
        vec, clf = _sklearn_reference(bundle_dir)
        sk_rate = _rate(lambda: clf.predict_proba(vec.transform([model_tokens(n) for n in norms])), len(norms), repeats)
        res["model_step_sklearn_msgs_per_s"] = round(sk_rate)
        res["onnx_vs_sklearn_speed_ratio"] = round(onnx_rate / sk_rate, 2)
    except ImportError:
        res["onnx_vs_sklearn_speed_ratio"] = None  # scikit-learn not installed

    import ahocorasick

    from kefuguard.rules import default_rules_dir

    auto = ahocorasick.Automaton()
    for f in default_rules_dir().glob("*.tsv"):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                auto.add_word(line.split("\t")[0].lower(), 1)
    auto.make_automaton()
    floor = _rate(lambda: [list(auto.iter(t)) for t in texts], len(texts), repeats)
    res["keyword_floor_msgs_per_s"] = round(floor)
    res["slowdown_vs_keyword_floor"] = round(floor / res["batch_4096_msgs_per_s"], 1)
    res["slowdown_vs_keyword_floor_clean"] = round(floor / res["batch_4096_clean_msgs_per_s"], 1)
    return res


def _dump(texts: list[str]) -> Path:
    import tempfile

    p = Path(tempfile.gettempdir()) / "kefuguard-bench-texts.json"
    p.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the shipped bundle)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (median is reported)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    res = run(args.bundle, args.repeats)
    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
