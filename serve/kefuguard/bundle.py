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
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import BundleError
from .labels import LABELS
from .text import _PUNCT, EDGE_END, EDGE_START, PREPROCESSING_ID, Normalized, _segment, _shape, model_tokens

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
    #: The vocabulary in id order (a list is accepted and packed into a _Vocab).
    #: Lookup tables are built from it at the first score; a token -> id dict
    #: (~10 MB at 100k features) only for the reference path.
    _tokens: "_Vocab"
    _sublinear: bool

    def __post_init__(self) -> None:
        if not isinstance(self._tokens, _Vocab):
            object.__setattr__(self, "_tokens", _Vocab(list(self._tokens)))

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
        if not isinstance(vocab_list, list) or not all(isinstance(t, str) and "\n" not in t for t in vocab_list):
            raise BundleError(f"{d / 'vocab.json'}: expected a JSON list of feature strings without newlines")
        return cls(d, info, labels, thresholds, hint, session, _Vocab(vocab_list), bool(info.get("sublinear_tf", True)))

    @staticmethod
    def _window_texts(norm: Normalized) -> list[str]:
        """The compact view cut into overlapping windows of at most WINDOW characters."""
        s = norm.compact
        if len(s) <= WINDOW:
            return [s]
        step = WINDOW - WINDOW_OVERLAP
        starts = list(range(0, len(s) - WINDOW_OVERLAP, step))
        if len(starts) > MAX_WINDOWS:
            starts = starts[: MAX_WINDOWS // 2] + starts[-MAX_WINDOWS // 2 :]
        return [s[a : a + WINDOW] for a in starts]

    def predict(self, norms: list[Normalized], *, reference: bool = False) -> np.ndarray:
        return self.predict_explainable(norms, reference=reference)[0]

    def predict_explainable(
        self, norms: list[Normalized], *, reference: bool = False
    ) -> tuple[np.ndarray, list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]]:
        """Return probabilities, shape ``[len(norms), len(labels)]``.

        Parameters
        ----------
        norms : list[Normalized]
            Normalised messages.
        reference : bool, default False
            Build features through :func:`kefuguard.text.model_tokens` (the
            training path) instead of the vectorised fast path. Both give
            identical inputs to the graph; tests compare them.

        Returns
        -------
        probabilities : numpy.ndarray
            float32, ``[len(norms), len(labels)]``; a long message's row is the
            maximum over its windows.
        windows : list
            Per message, per window: ``(probabilities [K], ids [L], contrib [L, K])``,
            the graph's per-feature contributions, which :meth:`explain` reads
            without another onnxruntime call.
        """
        n = len(norms)
        short = [i for i, nm in enumerate(norms) if len(nm.compact) <= WINDOW]
        long_ = [i for i, nm in enumerate(norms) if len(nm.compact) > WINDOW]
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        owner: list[int] = []
        if short:
            shaped = [_shape(norms[i].compact) for i in short]
            parts.append(self._reference_csr([model_tokens(norms[i]) for i in short]) if reference
                         else self._fast_csr(shaped))
            owner.extend(short)
        for i in long_:
            texts = self._window_texts(norms[i])
            parts.append(self._reference_csr([model_tokens(Normalized("", "", t, ())) for t in texts]) if reference
                         else self._fast_csr([_shape(t) for t in texts]))
            owner.extend([i] * len(texts))
        if not parts:
            return np.zeros((0, len(self.labels)), dtype=np.float32), []
        probs, contribs = self._run(*_concat_csr(parts))
        windows: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
        for row, i in enumerate(owner):
            windows[i].append((probs[row], *contribs[row]))
        if not long_:
            out = np.empty_like(probs)
            out[np.asarray(owner)] = probs
            return out, windows
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        np.maximum.at(out, np.asarray(owner), probs)
        return out, windows

    def _reference_csr(self, token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows from token strings: count in-vocabulary tokens, ids ascending."""
        get = self._vocab.get
        indptr = [0]
        ids: list[int] = []
        counts: list[int] = []
        for toks in token_lists:
            c = Counter(map(get, toks))  # counts in C; unknown tokens gather under None
            c.pop(None, None)
            for j in sorted(c):
                ids.append(j)
                counts.append(c[j])
            indptr.append(len(ids))
        return np.asarray(indptr, dtype=np.int64), np.asarray(ids, dtype=np.int64), self._tf(np.asarray(counts))

    def _fast_csr(self, shaped: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows for short messages: words via dict, character n-grams vectorised.

        Character 1–3-grams are packed into int64 keys (21 bits a code point) and
        looked up with one ``searchsorted`` over the whole batch instead of one
        string and one dict lookup per n-gram; this was the largest cost per
        message. Gives exactly the rows of :meth:`_reference_csr`.
        """
        n = len(shaped)
        vocab_size = max(1, len(self._tokens))
        # Words: one dict lookup per word gives the id of "w:<word>" (-1 if unknown);
        # bigrams are then looked up as packed (id, id) pairs. A bigram can only be
        # in the vocabulary if both its words are (document frequency of a word >=
        # that of any bigram containing it), so unknown words lose nothing.
        word_get = self._word_ids.get
        w_list: list[int] = []
        w_row_list: list[int] = []
        for r, s in enumerate(shaped):
            if s:
                wids = [word_get(w, -1) for w in _segment(s) if w not in _PUNCT]
                w_list += wids
                w_row_list += [r] * len(wids)
        w_ids_all = np.asarray(w_list, dtype=np.int64)
        w_rows_all = np.asarray(w_row_list, dtype=np.int64)
        known = w_ids_all >= 0
        pair = (w_rows_all[:-1] == w_rows_all[1:]) & known[:-1] & known[1:]
        bq = ((w_ids_all[:-1] << 32) | w_ids_all[1:])[pair]
        b_ids = self._bigram_table.lookup(bq)
        bhit = b_ids >= 0
        w_rows = np.concatenate([w_rows_all[known], w_rows_all[:-1][pair][bhit]])
        w_ids = np.concatenate([w_ids_all[known], b_ids[bhit]])
        # Character n-grams run over the text between the edge marks (as in
        # model_tokens); an empty message has no marks and no n-grams.
        marked = [EDGE_START + s + EDGE_END if s else "" for s in shaped]
        lens = np.fromiter(map(len, marked), dtype=np.int64, count=n)
        cps = np.frombuffer("".join(marked).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        row = np.repeat(np.arange(n, dtype=np.int64), lens)
        same1 = row[:-1] == row[1:]
        same2 = same1[:-1] & same1[1:]
        # Unigrams of the Basic Multilingual Plane: a direct table, no search.
        table = self._bmp_unigrams
        uni = ~np.isin(cps, _NO_UNIGRAM_CPS)
        bmp = uni & (cps < 0x10000)
        u_ids = table[cps[bmp]]
        u_hit = u_ids >= 0
        uni &= ~bmp  # the rest (emoji, rare CJK) go through the sorted keys
        q = np.concatenate([
            cps[uni],
            ((cps[:-1] << 21) | cps[1:])[same1],
            ((cps[:-2] << 42) | (cps[1:-1] << 21) | cps[2:])[same2],
        ])
        q_row = np.concatenate([row[uni], row[:-1][same1], row[:-2][same2]])
        c_ids = self._char_table.lookup(q)
        hit = c_ids >= 0
        all_rows = np.concatenate([w_rows, row[bmp][u_hit], q_row[hit]])
        all_ids = np.concatenate([w_ids, u_ids[u_hit], c_ids[hit]])
        uniq, counts = np.unique(all_rows * vocab_size + all_ids, return_counts=True)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // vocab_size, minlength=n), out=indptr[1:])
        return indptr, uniq % vocab_size, self._tf(counts)

    def _tf(self, counts: np.ndarray) -> np.ndarray:
        c = counts.astype(np.float64)
        return (1.0 + np.log(c) if self._sublinear else c).astype(np.float32)

    @property
    def _char_table(self) -> "_IntTable":
        """Character n-grams (BMP unigrams excepted) packed 21 bits a code point -> id."""
        return self._char_tables()[1]

    @property
    def _bmp_unigrams(self) -> np.ndarray:
        """Id of each Basic Multilingual Plane character unigram (-1 if absent), by code point."""
        return self._char_tables()[0]

    def _char_tables(self) -> tuple[np.ndarray, "_IntTable"]:
        cached = self.__dict__.get("_char_tables_cache")
        if cached is None:
            # Built at the first score in one vectorised pass over the vocabulary's
            # code points: n-grams of one length are packed 21 bits a code point;
            # BMP unigrams go to a direct table instead of the hash table.
            vocab = self._tokens
            cps = vocab.codepoints()
            first, lens = vocab.starts, vocab.lens
            is_char = (lens >= 3) & (lens <= 5)
            is_char[is_char] &= (cps[first[is_char]] == ord("c")) & (cps[first[is_char] + 1] == ord(":"))
            bmp = np.full(0x10000, -1, dtype=np.int64)
            table = _IntTable.empty(int(is_char.sum()))
            for n in (1, 2, 3):
                ids = np.flatnonzero(is_char & (lens == n + 2))
                base = first[ids] + 2  # after the "c:" prefix
                k = cps[base].astype(np.int64)
                for j in range(1, n):
                    k = (k << 21) | cps[base + j].astype(np.int64)
                if n == 1:
                    in_bmp = k < 0x10000
                    bmp[k[in_bmp]] = ids[in_bmp]
                    k, ids = k[~in_bmp], ids[~in_bmp]
                table.insert(k, ids)
            cached = (bmp, table)
            object.__setattr__(self, "_char_tables_cache", cached)  # frozen dataclass: cache once
        return cached

    @property
    def _vocab(self) -> dict[str, int]:
        cached = self.__dict__.get("_vocab_cache")
        if cached is None:
            cached = {tok: i for i, tok in enumerate(self._tokens.tokens())}
            object.__setattr__(self, "_vocab_cache", cached)  # frozen dataclass: cache once
        return cached

    @property
    def _word_ids(self) -> dict[str, int]:
        cached = self.__dict__.get("_word_ids_cache")
        if cached is None:
            cached = {tok[2:]: i for i, tok in self._tokens.with_prefix("w:")}
            object.__setattr__(self, "_word_ids_cache", cached)
        return cached

    @property
    def _bigram_table(self) -> "_IntTable":
        cached = self.__dict__.get("_bigram_table_cache")
        if cached is None:
            words = self._word_ids
            keys, ids = [], []
            for i, tok in self._tokens.with_prefix("b:"):
                a, _, b = tok[2:].partition("|")
                if a in words and b in words:
                    keys.append((words[a] << 32) | words[b])
                    ids.append(i)
            cached = _IntTable(np.asarray(keys, dtype=np.int64), np.asarray(ids, dtype=np.int64))
            object.__setattr__(self, "_bigram_table_cache", cached)
        return cached

    def _run(
        self, indptr: np.ndarray, ids: np.ndarray, tf: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        n = len(indptr) - 1
        out = np.zeros((n, len(self.labels)), dtype=np.float32)
        contribs: list[tuple[np.ndarray, np.ndarray]] = [(_EMPTY_IDS, _EMPTY_CONTRIB)] * n
        if n == 0:
            return out, contribs
        lengths = np.diff(indptr)
        widths = np.array([_bucket(int(x)) for x in lengths], dtype=np.int64)
        # Rows are padded to a width that depends on the row alone (a power of two),
        # and rows of one width go through onnxruntime together. A row's reduction
        # then always runs over the same padded length, so a message gets exactly
        # the same probabilities alone or in any batch; it also keeps one long
        # message from padding thousands of short ones.
        for width in np.unique(widths):
            members = np.nonzero(widths == width)[0]
            for c in range(0, len(members), _CHUNK):
                idx = members[c : c + _CHUNK]
                # onnxruntime reduces a batch of one row along another code path
                # whose float sums differ by ~2e-7 from any larger batch; an empty
                # second row keeps single messages on the batch path.
                n_rows = max(2, len(idx))
                m_ids = np.zeros((n_rows, int(width)), dtype=np.int64)
                m_tf = np.zeros((n_rows, int(width)), dtype=np.float32)
                ln = lengths[idx]
                total = int(ln.sum())
                if total:
                    local_row = np.repeat(np.arange(len(idx)), ln)
                    offset = np.arange(total) - np.repeat(np.cumsum(ln) - ln, ln)
                    src = np.repeat(indptr[idx], ln) + offset
                    m_ids[local_row, offset] = ids[src]
                    m_tf[local_row, offset] = tf[src]
                # The contributions come out of the same call (the graph computes them
                # anyway), so explaining a flag costs no second run.
                prob, contrib = self._session.run(["probabilities", "contrib"], {"ids": m_ids, "tf": m_tf})
                out[idx] = prob[: len(idx)]
                for k, i in enumerate(idx):
                    contribs[i] = (m_ids[k, : ln[k]], contrib[k, : ln[k]])
        return out, contribs

    def explain(
        self,
        norm: Normalized,
        labels: list[str],
        windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        top: int = 3,
    ) -> dict[str, list[dict[str, Any]]]:
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
        windows : list
            This message's entry of :meth:`predict_explainable`'s second result.
        top : int, default 3
            Features per label.

        Returns
        -------
        dict[str, list[dict]]
            Per label: ``{"feature", "weight", "start", "end", "text"}`` items,
            strongest first; a feature occurring several times gives several spans.
        """
        if not labels or not windows:
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        shaped = _shape(norm.compact)
        for lab in labels:
            k = self.labels.index(lab)
            _, ids, contrib = windows[0] if len(windows) == 1 else max(windows, key=lambda w: float(w[0][k]))
            col = contrib[:, k].tolist()
            order = sorted(range(len(col)), key=col.__getitem__, reverse=True)[:top]
            feats = [(self._tokens[int(ids[j])], col[j]) for j in order if col[j] > 0]
            out[lab] = _locate(norm, shaped, feats)
        return out


def _locate(norm: Normalized, shaped: str, features: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Map feature tokens (``w:``, ``b:a|b``, ``c:``) to spans of the original text.

    Edge marks are shown as ``^`` and ``$`` in the feature name; such a feature is
    located at the start or end of the message only.
    """
    items: list[dict[str, Any]] = []
    for feat, weight in features:
        kind, _, body = feat.partition(":")
        needle = body.replace("|", "") if kind == "b" else body
        at_start, at_end = needle.startswith(EDGE_START), needle.endswith(EDGE_END)
        needle = needle.strip(EDGE_START + EDGE_END)
        shown = feat.replace(EDGE_START, "^").replace(EDGE_END, "$")
        if not needle:
            continue
        if at_start or at_end:
            pos = 0 if at_start else len(shaped) - len(needle)
            ok = shaped.startswith(needle) if at_start else shaped.endswith(needle)
            positions = [pos] if ok else []
        else:
            positions, pos = [], shaped.find(needle)
            while pos >= 0 and len(positions) < 3:
                positions.append(pos)
                pos = shaped.find(needle, pos + len(needle))
        for pos in positions:
            start, end = norm.span(pos, pos + len(needle))
            items.append({"feature": shown, "weight": round(weight, 4), "start": start, "end": end,
                          "text": norm.original[start:end]})
    return items


class _Vocab:
    """The feature vocabulary in id order, packed into one string.

    A list of ~100k short Python strings costs ~14 MB of memory; one string with
    newline separators and two offset arrays cost ~3 MB. The character tables are
    built from the code points; only word and bigram features (for their tables)
    and the features an explanation names are cut out as strings. Features never
    contain newlines (the compact view has no whitespace), which
    :meth:`Bundle.load` checks.
    """

    def __init__(self, tokens: list[str]) -> None:
        self.blob = "\n".join(tokens)
        self.lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        self.starts = np.zeros(len(tokens), dtype=np.int64)
        np.cumsum(self.lens[:-1] + 1, out=self.starts[1:])

    def __len__(self) -> int:
        return len(self.lens)

    def __getitem__(self, i: int) -> str:
        start = int(self.starts[i])
        return self.blob[start : start + int(self.lens[i])]

    def tokens(self) -> list[str]:
        """All features as a list (only the reference path needs them all)."""
        return self.blob.split("\n") if len(self) else []

    def with_prefix(self, prefix: str) -> Iterator[tuple[int, str]]:
        """``(id, feature)`` for the features starting with ``prefix``."""
        blob, starts, lens = self.blob, self.starts.tolist(), self.lens.tolist()
        for i, (start, n) in enumerate(zip(starts, lens)):
            if blob.startswith(prefix, start, start + n):
                yield i, blob[start : start + n]

    def codepoints(self) -> np.ndarray:
        """The packed string's code points, uint32 (offsets are ``starts``)."""
        return np.frombuffer(self.blob.encode("utf-32-le"), dtype=np.uint32)


_INSERT_CHUNK = 8192


class _IntTable:
    """An open-addressing hash table from int64 keys to ids, probed vectorised.

    ``lookup`` hashes every query at once and probes all of them together, one
    gather per probe round; at load factor <= 0.5 almost every query settles in
    one or two rounds. This replaced a ``searchsorted`` over the sorted keys, which
    cost ~6 µs a message in cache misses.
    """

    def __init__(self, keys: np.ndarray, ids: np.ndarray) -> None:
        self._alloc(len(keys))
        self.insert(keys, ids)

    @classmethod
    def empty(cls, capacity: int) -> "_IntTable":
        """A table sized for ``capacity`` keys, filled later with :meth:`insert`."""
        table = cls.__new__(cls)
        table._alloc(capacity)
        return table

    def _alloc(self, capacity: int) -> None:
        size = 1 << max(4, int(2 * max(1, capacity) - 1).bit_length())  # power of two >= 2n
        self.mask = size - 1
        self.keys = np.full(size, -1, dtype=np.int64)  # keys are >= 0, so -1 marks empty
        self.ids = np.full(size, -1, dtype=np.int32)  # vocabulary ids fit; halves the table

    def insert(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add distinct new ``keys`` (at most the capacity in all)."""
        # Vectorised insertion (it runs at cold start): each round, every pending key
        # whose slot is free and not wanted by an earlier pending key takes it; the
        # rest move one slot on. Every key ends at the first free slot at or after its
        # hash, so linear probing finds it. Chunks keep the temporaries small.
        for lo in range(0, len(keys), _INSERT_CHUNK):
            chunk_keys, chunk_ids = keys[lo : lo + _INSERT_CHUNK], ids[lo : lo + _INSERT_CHUNK]
            slot = self._hash(chunk_keys)
            pending = np.arange(len(chunk_keys))
            while len(pending):
                free = self.keys[slot] == -1
                first = np.zeros(len(pending), dtype=bool)
                _, first_idx = np.unique(slot, return_index=True)
                first[first_idx] = True
                take = free & first
                self.keys[slot[take]] = chunk_keys[pending[take]]
                self.ids[slot[take]] = chunk_ids[pending[take]]
                pending, slot = pending[~take], (slot[~take] + 1) & self.mask

    def _hash(self, q: np.ndarray) -> np.ndarray:
        # Fibonacci hashing; the multiply wraps modulo 2**64 on purpose.
        with np.errstate(over="ignore"):
            return ((q.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)).astype(np.int64) & self.mask

    def lookup(self, q: np.ndarray) -> np.ndarray:
        """Ids for ``q`` (``-1`` where a key is absent)."""
        out = np.full(len(q), -1, dtype=np.int64)
        todo = np.arange(len(q))
        slot = self._hash(q)
        while len(todo):
            k = self.keys[slot]
            found = k == q[todo]
            out[todo[found]] = self.ids[slot[found]]
            pending = (k != -1) & ~found  # occupied by another key: probe on
            todo, slot = todo[pending], (slot[pending] + 1) & self.mask
        return out


def _concat_csr(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    indptrs, ids, tfs = [], [], []
    base = 0
    for k, (ip, i, t) in enumerate(parts):
        indptrs.append(ip[1:] + base if k else ip + base)
        base += int(ip[-1])
        ids.append(i)
        tfs.append(t)
    return np.concatenate(indptrs), np.concatenate(ids), np.concatenate(tfs)


_EMPTY_IDS = np.zeros(0, dtype=np.int64)
_EMPTY_CONTRIB = np.zeros((0, 0), dtype=np.float32)
# Punctuation and the edge marks are not unigram features (see model_tokens).
_NO_UNIGRAM_CPS = np.array(sorted(ord(c) for c in _PUNCT | {EDGE_START, EDGE_END}), dtype=np.int64)


def _bucket(length: int) -> int:
    """Padded width for a row of ``length`` features: the next power of two, at least 32."""
    width = 32
    while width < length:
        width *= 2
    return width


# Rows per onnxruntime call: large enough to amortise the ~35 µs call overhead,
# small enough to keep the padded [chunk × width] arrays small.
_CHUNK = 1024
