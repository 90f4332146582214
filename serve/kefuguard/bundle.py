"""Loading a model bundle: ``model.onnx`` + ``vocab.json`` + ``bundle.json``.

The ONNX graph is a sparse linear model over token ids (see
``model/export.py``): inputs ``ids`` (int64, [N, L]) and ``tf`` (float32,
[N, L], zero for padding), output ``probabilities`` (float32, [N, K]). The
token → id lookup happens here in Python with a dict, which is what keeps the
graph fast at any vocabulary size (PERFORMANCE-NOTES).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError
from .labels import LABELS
from .text import PREPROCESSING_ID, Normalized, model_tokens

__all__ = ["BUNDLE_SCHEMA", "Bundle", "default_bundle_dir", "file_sha256"]

#: Version of the bundle layout this runtime reads.
BUNDLE_SCHEMA = 1

# The model reads at most this many compact characters per window; longer
# messages are split into windows and a label's probability is its maximum over
# windows, so a violation in a long message is not diluted by the L2 norm.
WINDOW = 512
WINDOW_OVERLAP = 32
# Beyond this many windows (~256k characters) the model reads the first and last
# windows only; the rule layer still reads the whole text.
MAX_WINDOWS = 512


def default_bundle_dir() -> Path:
    """Return the directory of the model bundle shipped inside the package."""
    return Path(str(resources.files("kefuguard") / "bundle"))


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle, ready to compute probabilities.

    Attributes
    ----------
    path : Path
        The bundle directory.
    info : dict
        The parsed ``bundle.json``.
    labels : tuple[str, ...]
        Labels of the model's outputs, in output order.
    thresholds : dict[str, float]
        Probability at or above which the model flags a label.
    hint_thresholds : dict[str, float]
        Lower probability at which the model confirms a rule *hint* (hybrid mode).
    """

    path: Path
    info: dict[str, Any]
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    hint_thresholds: dict[str, float]
    _session: Any
    _vocab: dict[str, int]
    _sublinear: bool
    _tokens: list[str] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Bundle":
        """Load and verify a bundle directory.

        Parameters
        ----------
        path : str or Path, optional
            Bundle directory; the shipped bundle when omitted.

        Returns
        -------
        Bundle

        Raises
        ------
        BundleError
            Missing files, hash mismatch, unknown labels or an incompatible
            schema or preprocessing id.
        """
        d = Path(path) if path is not None else default_bundle_dir()
        meta_path = d / "bundle.json"
        if not meta_path.is_file():
            raise BundleError(f"{d}: not a kefuguard bundle (no bundle.json)")
        try:
            info = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{meta_path}: cannot read bundle metadata: {exc}") from exc
        if info.get("schema_version") != BUNDLE_SCHEMA:
            raise BundleError(
                f"{meta_path}: bundle schema {info.get('schema_version')!r} is not supported "
                f"by this kefuguard (reads schema {BUNDLE_SCHEMA})"
            )
        if info.get("preprocessing") != PREPROCESSING_ID:
            raise BundleError(
                f"{meta_path}: bundle was trained with preprocessing {info.get('preprocessing')!r}, "
                f"this kefuguard tokenises as {PREPROCESSING_ID!r}; retrain the bundle"
            )
        labels = tuple(info.get("labels", ()))
        unknown = [lab for lab in labels if lab not in LABELS]
        if unknown or not labels:
            raise BundleError(f"{meta_path}: labels {unknown or labels!r} are not taxonomy labels")
        for name, digest in info.get("files", {}).items():
            fpath = d / name
            if not fpath.is_file():
                raise BundleError(f"{d}: bundle file {name} is missing")
            if file_sha256(fpath) != digest:
                raise BundleError(f"{fpath}: SHA-256 does not match bundle.json; the bundle is corrupt")
        try:
            vocab_list = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{d / 'vocab.json'}: cannot read vocabulary: {exc}") from exc
        thresholds = {lab: float(info["thresholds"][lab]) for lab in labels}
        hint = {lab: float(info.get("hint_thresholds", {}).get(lab, thresholds[lab] / 2)) for lab in labels}
        import onnxruntime as ort  # ~0.1 s: only when a model is actually loaded

        opts = ort.SessionOptions()
        # One thread: the graph is tiny and callers parallelise with processes;
        # extra intra-op threads only add wake-up latency on a 2-core machine.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(d / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{d / 'model.onnx'}: onnxruntime cannot load the model: {exc}") from exc
        vocab = {tok: i for i, tok in enumerate(vocab_list)}
        return cls(d, info, labels, thresholds, hint, session, vocab, bool(info.get("sublinear_tf", True)),
                   vocab_list)

    def _windows(self, norm: Normalized) -> list[list[str]]:
        s = norm.compact
        if len(s) <= WINDOW:
            return [model_tokens(norm)]
        step = WINDOW - WINDOW_OVERLAP
        starts = list(range(0, len(s) - WINDOW_OVERLAP, step))
        if len(starts) > MAX_WINDOWS:
            starts = starts[: MAX_WINDOWS // 2] + starts[-MAX_WINDOWS // 2 :]
        return [
            model_tokens(Normalized("", "", s[a : a + WINDOW], norm.compact_map[a : a + WINDOW]))
            for a in starts
        ]

    def predict(self, norms: list[Normalized]) -> np.ndarray:
        """Return probabilities, shape ``[len(norms), len(labels)]``.

        Parameters
        ----------
        norms : list[Normalized]
            Normalised messages.

        Returns
        -------
        numpy.ndarray
            float32 probabilities; a long message's row is the maximum over its
            windows.
        """
        rows: list[dict[int, float]] = []
        owner: list[int] = []
        get = self._vocab.get
        log = math.log
        for i, norm in enumerate(norms):
            for toks in self._windows(norm):
                # Counter over map() counts in C; unknown tokens collect under None.
                counts = Counter(map(get, toks))
                counts.pop(None, None)
                if self._sublinear:
                    rows.append({j: 1.0 + log(c) if c > 1 else 1.0 for j, c in counts.items()})
                else:
                    rows.append({j: float(c) for j, c in counts.items()})
                owner.append(i)
        probs = self._run(rows)
        if len(rows) == len(norms):
            return probs
        out = np.zeros((len(norms), len(self.labels)), dtype=np.float32)
        np.maximum.at(out, np.asarray(owner), probs)
        return out

    def _run(self, rows: list[dict[int, float]]) -> np.ndarray:
        n = len(rows)
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        # Rows are padded to a width that depends on the row alone (a power of two),
        # and rows of one width go through onnxruntime together. A row's reduction
        # then always runs over the same padded length, so a message gets exactly
        # the same probabilities alone or in any batch; it also keeps one long
        # message from padding thousands of short ones.
        by_width: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            by_width.setdefault(_bucket(len(r)), []).append(i)
        for width, members in by_width.items():
            for c in range(0, len(members), _CHUNK):
                idx = members[c : c + _CHUNK]
                # onnxruntime reduces a batch of one row along another code path
                # whose float sums differ by ~2e-7 from any larger batch; an empty
                # second row keeps single messages on the batch path.
                n_rows = max(2, len(idx))
                ids = np.zeros((n_rows, width), dtype=np.int64)
                tf = np.zeros((n_rows, width), dtype=np.float32)
                for k, i in enumerate(idx):
                    r = rows[i]
                    if r:
                        ids[k, : len(r)] = list(r.keys())
                        tf[k, : len(r)] = list(r.values())
                out[idx] = self._session.run(["probabilities"], {"ids": ids, "tf": tf})[0][: len(idx)]
        return out

    def explain(self, norm: Normalized, labels: list[str], top: int = 3) -> dict[str, list[dict[str, Any]]]:
        """Top contributing n-grams for ``labels``, with spans in the original text.

        For a linear model the contribution of a feature to a label's logit is its
        tf-idf weight times the label's coefficient; the graph's ``contrib`` output
        gives exactly that. Long messages are explained from their most
        incriminating window.

        Parameters
        ----------
        norm : Normalized
            The normalised message.
        labels : list[str]
            Labels to explain.
        top : int, default 3
            Features per label.

        Returns
        -------
        dict[str, list[dict]]
            Per label: ``{"feature", "weight", "start", "end", "text"}`` items,
            strongest first; a feature occurring several times gives several spans.
        """
        if not labels or self._tokens is None:
            return {}
        windows = self._windows(norm)
        out: dict[str, list[dict[str, Any]]] = {}
        get = self._vocab.get
        for lab in labels:
            k = self.labels.index(lab)
            best: tuple[float, list[tuple[str, float]]] | None = None
            for toks in windows:
                counts = Counter(map(get, toks))
                counts.pop(None, None)
                if not counts:
                    continue
                ids = np.array([list(counts)], dtype=np.int64)
                tf = np.array([[1.0 + math.log(c) if self._sublinear else float(c) for c in counts.values()]],
                              dtype=np.float32)
                prob, contrib = self._session.run(["probabilities", "contrib"], {"ids": ids, "tf": tf})
                if best is None or prob[0, k] > best[0]:
                    pairs = sorted(((self._tokens[j], float(contrib[0, n, k])) for n, j in enumerate(ids[0])),
                                   key=lambda p: -p[1])
                    best = (float(prob[0, k]), [p for p in pairs if p[1] > 0][:top])
            if best is not None:
                out[lab] = _locate(norm, best[1])
        return out


def _locate(norm: Normalized, features: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Map feature tokens (``w:``, ``b:a|b``, ``c:``) to spans of the original text."""
    from .text import _shape

    shaped = _shape(norm.compact)
    items: list[dict[str, Any]] = []
    for feat, weight in features:
        kind, _, body = feat.partition(":")
        needle = body.replace("|", "") if kind == "b" else body
        pos = shaped.find(needle) if needle else -1
        found = 0
        while pos >= 0 and found < 3:
            start, end = norm.span(pos, pos + len(needle))
            items.append({"feature": feat, "weight": round(weight, 4), "start": start, "end": end,
                          "text": norm.original[start:end]})
            found += 1
            pos = shaped.find(needle, pos + len(needle))
    return items


def _bucket(length: int) -> int:
    """Padded width for a row of ``length`` features: the next power of two, at least 32."""
    width = 32
    while width < length:
        width *= 2
    return width


# Rows per onnxruntime call: large enough to amortise the ~35 µs call overhead,
# small enough to keep the padded [chunk × width] arrays in cache.
_CHUNK = 256
