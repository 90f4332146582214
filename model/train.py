"""Train the classifier, export it to ONNX and write a model bundle.

Usage::

    python -m model.train --out bundles/mine [--data my_labels.jsonl] [--data more.csv]
                          [--no-base] [--strict] [--seed 0] [--C 8]

Steps (each reported as it runs): load and validate the shipped corpus (unless
``--no-base``) and every ``--data`` file; split by a stable hash of the group id
(train 70 / dev 15 / test 15); add obfuscated variants of training positives
(:mod:`model.augment`); fit tf-idf features (word 1–2-grams from rjieba and
character 1–3-grams, the 2- and 3-grams also across start and end marks, see
:func:`kefuguard.text.model_tokens`) and one logistic regression per label, hard
and plain negatives weighted 3x; calibrate each label with Platt scaling on
5-fold (by group) out-of-fold scores of the training split; choose thresholds on the dev
split; export a sparse ONNX graph, check it against the trained model on the
held-out splits (refusing beyond |Δp| 1e-4); evaluate on the test split; write
``model.onnx``, ``vocab.json``, ``bundle.json`` and ``metrics.json``.

Threshold policy: for each label, the lowest threshold on a 0.01 grid in
[0.20, 0.95] that maximises F1 among thresholds whose dev precision is at least
0.90; if none reaches 0.90, the one maximising F0.5 (precision weighted).
For rude_tone, messages labelled abuse (rudeness with insults) are left out of
that choice (:data:`SUBSUMED_BY`). Hint thresholds (rule hints confirmed by the
model in hybrid mode) are half the label threshold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kefuguard import __version__
from kefuguard.bundle import BUNDLE_SCHEMA, file_sha256
from kefuguard.labels import LABELS
from kefuguard.text import PREPROCESSING_ID, model_tokens, normalize

from .augment import augment
from .data import Example, load_corpus, load_file
from .export import PARITY_TOLERANCE, build_graph

__all__ = ["TrainedModel", "fit", "choose_thresholds", "train_bundle", "main"]

PRECISION_TARGET = 0.90
HINT_FACTOR = 0.5
#: Defaults chosen on the dev split of the 23.7k-message corpus (thresholds from
#: one half of dev, scored on the other): C 64 / weight 3 against 16 / 2 gave
#: macro-F1 0.817 vs 0.814 and hard-negative false flags 6.0 % vs 7.0 %.
DEFAULT_C = 64.0
HARD_NEGATIVE_WEIGHT = 3.0
#: Plain negatives weigh as much as hard ones. Chosen on dev after corpus round 8,
#: whose many short positives made short innocent replies ("嗯呐", "有事再来") look
#: like them: weight 3 vs 1 gave dev macro-F1 0.841 vs 0.844, implicit recall
#: 0.674 vs 0.683, hard-negative false flags 4.9 vs 5.2 % and plain 0.9 vs 1.2 %.
#: A wrong flag on an ordinary reply costs a user more than a missed borderline one.
PLAIN_NEGATIVE_WEIGHT = 3.0
#: Features seen in fewer training messages are dropped. 3 rather than 2 cuts the
#: vocabulary from 150k to 96k (bundle 7.5 -> 4.8 MB, peak scorer memory -9 MB) at
#: the same dev macro-F1 (0.816 vs 0.817) with fewer false flags on dev (hard
#: negatives 5.4 % vs 6.0 %, plain 0.9 % vs 1.5 %) and lower implicit recall
#: (0.666 vs 0.685).
MIN_DF = 3


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _tokens(texts: list[str]) -> list[list[str]]:
    return [model_tokens(normalize(t)) for t in texts]


def _identity(tokens: list[str]) -> list[str]:
    return tokens


@dataclass
class TrainedModel:
    """A fitted vectoriser + per-label calibrated logistic regressions."""

    vectorizer: Any
    classifiers: list[Any]
    platt: np.ndarray  # [K, 2]: a, c with p = sigmoid(a * decision + c)
    labels: tuple[str, ...]

    def decision(self, tokens: list[list[str]]) -> np.ndarray:
        x = self.vectorizer.transform(tokens)
        return np.column_stack([clf.decision_function(x) for clf in self.classifiers])

    def predict_proba(self, tokens: list[list[str]]) -> np.ndarray:
        """Calibrated probabilities computed with scikit-learn (the reference path)."""
        z = self.decision(tokens)
        return 1.0 / (1.0 + np.exp(-(z * self.platt[:, 0] + self.platt[:, 1])))

    def export_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """idf [V], weights [V, K] and bias [K] with calibration folded in, and the vocabulary."""
        vocab = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        coef = np.vstack([clf.coef_.ravel() for clf in self.classifiers])  # [K, V]
        intercept = np.array([clf.intercept_[0] for clf in self.classifiers])
        a, c = self.platt[:, 0], self.platt[:, 1]
        return self.vectorizer.idf_, (coef * a[:, None]).T, intercept * a + c, vocab


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return 1.0, 0.0
    lr = LogisticRegression(C=1e4, solver="lbfgs").fit(scores.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def fit(
    train: list[Example],
    *,
    C: float = DEFAULT_C,
    seed: int = 0,
    quiet: bool = False,
    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT,
    plain_negative_weight: float = PLAIN_NEGATIVE_WEIGHT,
    min_df: int = MIN_DF,
) -> TrainedModel:
    """Fit features and calibrated per-label classifiers on ``train``.

    Parameters
    ----------
    train : list[Example]
        Training messages (buyer messages are ignored).
    C : float, default 64.0
        Inverse regularisation strength of each logistic regression.
    seed : int, default 0
        Seed for the cross-validation folds and the solver.
    hard_negative_weight : float, default 3.0
        Sample weight of ``hard_negative`` messages: a wrong flag on text that only
        looks like a violation is what users notice first.
    plain_negative_weight : float, default 3.0
        Sample weight of ``plain_negative`` messages (ordinary replies); see
        :data:`PLAIN_NEGATIVE_WEIGHT`.
    min_df : int, default 3
        Keep features seen in at least this many training messages.

    Returns
    -------
    TrainedModel
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    toks = _tokens([ex.text for ex in train])
    _log(f"  tokenised {len(toks)} training messages in {time.perf_counter() - t0:.1f}s", quiet)
    vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df, norm="l2", smooth_idf=True)
    x = vec.fit_transform(toks)
    _log(f"  vocabulary: {x.shape[1]} features", quiet)
    y = np.array([[lab in ex.labels for lab in LABELS] for ex in train], dtype=int)
    by_subset = {"hard_negative": hard_negative_weight, "plain_negative": plain_negative_weight}
    weight = np.array([by_subset.get(ex.subset, 1.0) for ex in train])
    # Out-of-fold calibration folds by a hash of the group (seeded): cheap, stable,
    # and paraphrases stay in one fold. sklearn's StratifiedGroupKFold took ~90 s here.
    n_folds = min(5, len({ex.group for ex in train}))
    fold = np.array([int.from_bytes(hashlib.sha1(f"{seed}:{ex.group}".encode()).digest()[:4], "big") % max(1, n_folds)
                     for ex in train])
    classifiers, platt = [], []
    for k, lab in enumerate(LABELS):
        yk = y[:, k]
        if yk.min() == yk.max():
            raise ValueError(f"label {lab!r} has {'no' if yk.max() == 0 else 'only'} positive training examples")
        make = lambda: LogisticRegression(C=C, solver="liblinear", random_state=seed, max_iter=1000)  # noqa: E731
        if all(yk[fold == f].sum() and (1 - yk[fold == f]).sum() for f in range(n_folds)) and n_folds >= 2:
            # Folds by group: a paraphrase (or an augmented copy) never scores its twin.
            oof = np.zeros(len(yk))
            for f in range(n_folds):
                tr, te = fold != f, fold == f
                oof[te] = make().fit(x[tr], yk[tr], sample_weight=weight[tr]).decision_function(x[te])
            platt.append(_platt(oof, yk))
        else:  # too few positives to calibrate out of fold: keep the raw logistic output
            platt.append((1.0, 0.0))
        classifiers.append(make().fit(x, yk, sample_weight=weight))
        _log(f"  [{k + 1}/{len(LABELS)}] {lab}: {int(yk.sum())} positives, calibrated a={platt[-1][0]:.2f} c={platt[-1][1]:.2f}", quiet)
    return TrainedModel(vec, classifiers, np.array(platt), LABELS)


#: When choosing a label's threshold, messages carrying the key's "stronger"
#: label count neither for nor against it. TAXONOMY defines rude_tone as rudeness
#: *without* insults, so an insulting message that also reads as rude is abuse;
#: the model scoring it high on rude_tone is the same judgement one level down,
#: not a false alarm on an acceptable message.
SUBSUMED_BY: dict[str, str] = {"rude_tone": "abuse"}


def choose_thresholds(probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Per-label thresholds on dev data; see the module docstring for the policy."""
    grid = np.round(np.arange(0.20, 0.951, 0.01), 2)
    out = {}
    for k, lab in enumerate(LABELS):
        keep = np.ones(len(gold), dtype=bool)
        if lab in SUBSUMED_BY:
            keep = ~gold[:, LABELS.index(SUBSUMED_BY[lab])].astype(bool) | gold[:, k].astype(bool)
        y = gold[keep, k].astype(bool)
        scores = probs[keep, k]
        best, best_key = 0.5, None
        fallback, fb_key = 0.5, None
        for t in grid:
            p = scores >= t
            tp = int((p & y).sum())
            prec = tp / p.sum() if p.sum() else 1.0
            rec = tp / y.sum() if y.sum() else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            f05 = 1.25 * prec * rec / (0.25 * prec + rec) if prec + rec else 0.0
            if prec >= PRECISION_TARGET and (best_key is None or f1 > best_key):
                best, best_key = float(t), f1
            if fb_key is None or f05 > fb_key:
                fallback, fb_key = float(t), f05
        out[lab] = best if best_key is not None else fallback
    return out


def _sha_examples(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.text, ex.labels, ex.group], ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "kefuguard": __version__}
    for dist in ("scikit-learn", "numpy", "onnx", "onnxruntime", "rjieba", "opencc", "pyahocorasick"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _rows_for(bundle: Any, texts: list[str]) -> np.ndarray:
    return bundle.predict([normalize(t) for t in texts])


def train_bundle(
    examples: list[Example],
    out: str | Path,
    *,
    C: float = DEFAULT_C,
    seed: int = 0,
    quiet: bool = False,
    sources: list[str] | None = None,
    augment_data: bool = True,
) -> dict[str, Any]:
    """Train on ``examples``, export, verify and write a bundle to ``out``.

    Parameters
    ----------
    examples : list[Example]
        All labeled messages; split by group hash into train / dev / test.
    out : str or Path
        Bundle directory to create (replaced atomically if it exists).
    C, seed : see :func:`fit`.
    quiet : bool
        Suppress progress output on stderr.
    sources : list[str], optional
        Names of the data sources, recorded in ``bundle.json``.
    augment_data : bool, default True
        Add obfuscated variants of training positives (see :mod:`model.augment`).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.

    Raises
    ------
    ValueError
        A split has no data, or a label has no training positives.
    RuntimeError
        ONNX parity fails (max |Δp| above :data:`PARITY_TOLERANCE`).
    """
    from kefuguard.bundle import Bundle

    from .evaluate import evaluate_modes, format_report, label_metrics

    t_start = time.perf_counter()
    examples = [ex for ex in examples if ex.role == "agent"]
    parts = {s: [ex for ex in examples if ex.split == s] for s in ("train", "dev", "test")}
    for s, xs in parts.items():
        if not xs:
            raise ValueError(f"the {s} split is empty: add more labeled messages (splits are 70/15/15 by group)")
    _log(f"[1/5] data: {len(examples)} messages -> train {len(parts['train'])}, dev {len(parts['dev'])}, test {len(parts['test'])}", quiet)
    _log("[2/5] training", quiet)
    train_set = parts["train"]
    aug_stats = None
    if augment_data:
        extra, aug_stats = augment(train_set, seed=seed)
        train_set = train_set + extra
        _log(f"  augmentation: {aug_stats['generated']} variants, {aug_stats['redundant']} identical after "
             f"normalisation, {aug_stats['kept']} added", quiet)
    model = fit(train_set, C=C, seed=seed, quiet=quiet)
    dev_tokens = _tokens([ex.text for ex in parts["dev"]])
    dev_probs = model.predict_proba(dev_tokens)
    dev_gold = np.array([[lab in ex.labels for lab in LABELS] for ex in parts["dev"]], dtype=int)
    thresholds = choose_thresholds(dev_probs, dev_gold)
    _log("  thresholds: " + ", ".join(f"{k}={v:.2f}" for k, v in thresholds.items()), quiet)

    _log("[3/5] exporting ONNX", quiet)
    idf, weights, bias, vocab = model.export_arrays()
    data_sha = _sha_examples(examples)
    model_version = f"{__version__}+{data_sha[:8]}.s{seed}"
    onnx_bytes = build_graph(idf, weights, bias, {
        "labels": json.dumps(list(LABELS)),
        "model_version": model_version,
        "preprocessing": PREPROCESSING_ID,
    })
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        (tmp / "model.onnx").write_bytes(onnx_bytes)
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        info: dict[str, Any] = {
            "schema_version": BUNDLE_SCHEMA,
            "model_version": model_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "labels": list(LABELS),
            "thresholds": thresholds,
            "hint_thresholds": {k: round(v * HINT_FACTOR, 4) for k, v in thresholds.items()},
            "threshold_policy": f"max dev F1 subject to precision >= {PRECISION_TARGET}, else max F0.5; hints at {HINT_FACTOR} x threshold",
            "preprocessing": PREPROCESSING_ID,
            "sublinear_tf": True,
            "features": {"vocabulary": len(vocab), "C": C, "seed": seed, "min_df": MIN_DF,
                         "hard_negative_weight": HARD_NEGATIVE_WEIGHT, "plain_negative_weight": PLAIN_NEGATIVE_WEIGHT,
                         "augmentation": aug_stats},
            "training_data": {"sha256": data_sha, "messages": len(examples), "sources": sources or [],
                              "split_sizes": {s: len(v) for s, v in parts.items()}},
            "versions": _versions(),
            "files": {"model.onnx": file_sha256(tmp / "model.onnx"), "vocab.json": file_sha256(tmp / "vocab.json")},
        }
        (tmp / "bundle.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")

        # Parity: the runtime path (Python lookup + onnxruntime) against sklearn,
        # on held-out messages plus the empty message.
        held = [ex.text for ex in parts["dev"] + parts["test"]] + ["", "   "]
        ref = model.predict_proba(_tokens(held))
        got = _rows_for(Bundle.load(tmp), held)
        parity = float(np.max(np.abs(ref - got)))
        _log(f"  parity on {len(held)} held-out messages: max |dp| = {parity:.2e} (tolerance {PARITY_TOLERANCE:.0e})", quiet)
        if not parity <= PARITY_TOLERANCE:
            raise RuntimeError(
                f"ONNX export disagrees with the trained model: max |dp| {parity:.3g} > {PARITY_TOLERANCE}; "
                "bundle not written"
            )
        info["parity_max_abs_diff"] = parity

        _log("[4/5] evaluating on dev and test", quiet)
        test_gold = [ex.labels for ex in parts["test"]]
        n_dev = len(parts["dev"])
        test_model = ref[n_dev : n_dev + len(parts["test"])]  # scored for the parity check already
        pred = [tuple(lab for k, lab in enumerate(LABELS) if row[k] >= thresholds[lab]) for row in test_model]
        report = evaluate_modes(tmp, parts["test"])
        dev_pred = [tuple(lab for k, lab in enumerate(LABELS) if row[k] >= thresholds[lab]) for row in dev_probs]
        metrics = {
            "test": report,
            "dev_model": label_metrics([ex.labels for ex in parts["dev"]], dev_pred),
            "test_model_sklearn": label_metrics(test_gold, pred),
            "parity_max_abs_diff": parity,
            "train_seconds": round(time.perf_counter() - t_start, 1),
        }
        info["metrics"] = {
            "test_macro_f1": {m: round(report[m]["labels"]["macro_f1"], 4) for m in ("hybrid", "model", "rules")},
            "test_f1": {lab: round(report["hybrid"]["labels"][lab]["f1"], 4) for lab in LABELS},
            "test_subsets_hybrid": report["hybrid"]["subsets"],
        }
        (tmp / "bundle.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        _log("[5/5] writing bundle", quiet)
        tmp.chmod(0o755)  # mkdtemp creates 0700; a bundle is read by other users and packagers
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not quiet:
        print(format_report(report, "test split"))
        print(f"\nbundle written to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB) "
              f"in {metrics['train_seconds']}s; parity {parity:.1e}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", default=[], help="labeled JSONL or CSV file (repeatable)")
    parser.add_argument("--no-base", action="store_true", help="do not merge the shipped corpus")
    parser.add_argument("--strict", action="store_true", help="stop at the first invalid record instead of skipping")
    parser.add_argument("--out", required=True, help="bundle directory to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--C", type=float, default=DEFAULT_C, help=f"inverse regularisation (default {DEFAULT_C:g})")
    parser.add_argument("--no-augment", action="store_true", help="no obfuscation augmentation of training positives")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    if args.no_base and not args.data:
        parser.error("--no-base needs at least one --data file")
    examples: list[Example] = []
    errors: list[str] = []
    sources = []
    if not args.no_base:
        ex, err = load_corpus()
        examples += ex
        errors += err
        sources.append("data/corpus")
    for f in args.data:
        ex, err = load_file(f)
        _log(f"loaded {len(ex)} records from {f}" + (f", {len(err)} invalid" if err else ""), args.quiet)
        examples += ex
        errors += err
        sources.append(Path(f).name)
    if errors:
        for e in errors:
            print(("error: " if args.strict else "skipped: ") + e, file=sys.stderr)
        if args.strict:
            print(f"--strict: {len(errors)} invalid record(s); nothing trained", file=sys.stderr)
            return 1
        print(f"{len(errors)} invalid record(s) skipped", file=sys.stderr)
    try:
        train_bundle(examples, args.out, C=args.C, seed=args.seed, quiet=args.quiet, sources=sources,
                     augment_data=not args.no_augment)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
