"""Labeled data: loading, validation, splits and the corpus checker.

Usage::

    python -m model.data check            # validate data/corpus, print tables; exit 1 on problems
    python -m model.data check --json out.json

Records follow ``TAXONOMY.md`` (JSON Lines with ``text`` and ``labels``); the
retraining script also accepts CSV with ``text,labels`` columns, labels joined
by ``;`` or ``|``. Every problem is reported as ``file:line: message``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kefuguard.labels import LABELS
from kefuguard.records import iter_csv, iter_jsonl

__all__ = [
    "Example",
    "SUBSETS",
    "PLATFORMS",
    "REPO",
    "CORPUS_DIR",
    "load_file",
    "load_corpus",
    "split_of",
    "check",
]

REPO = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO / "data" / "corpus"
SUBSETS = ("explicit", "implicit", "obfuscated", "traditional", "hard_negative", "plain_negative")
PLATFORMS = ("taobao", "tmall", "pinduoduo", "jd", "douyin", "kuaishou", "xiaohongshu")
SPLITS = ("train", "dev", "test")


@dataclass
class Example:
    """One labeled message."""

    text: str
    labels: tuple[str, ...]
    group: str
    where: str  # file:line, for messages about this record
    id: str = ""
    subset: str = ""
    platform: str = ""
    role: str = "agent"
    extra: dict = field(default_factory=dict)

    @property
    def split(self) -> str:
        """``train``, ``dev`` or ``test``, from a stable hash of the group id."""
        return split_of(self.group)


def split_of(group: str) -> str:
    """Assign a group to a split by SHA-1 of its id: 70% train, 15% dev, 15% test.

    A hash (not a random draw) keeps the assignment fixed across runs, machines
    and corpus growth: adding messages never moves an existing group.
    """
    h = int.from_bytes(hashlib.sha1(group.encode("utf-8")).digest()[:4], "big") % 100
    return "train" if h < 70 else "dev" if h < 85 else "test"


def _parse_labels(value: object, where: str, errors: list[str]) -> tuple[str, ...] | None:
    if isinstance(value, str):
        raw = [p.strip() for p in value.replace("|", ";").split(";") if p.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        raw = [v.strip() for v in value]
    else:
        errors.append(f"{where}: 'labels' must be a list of strings, got {type(value).__name__}")
        return None
    unknown = [lab for lab in raw if lab not in LABELS]
    if unknown:
        hint = " (harassment is conversation-level only)" if "harassment" in unknown else ""
        errors.append(f"{where}: unknown label(s) {unknown}{hint}; expected a subset of {list(LABELS)}")
        return None
    return tuple(lab for lab in LABELS if lab in raw)


def _make(rec: dict, where: str, errors: list[str], strict_meta: bool) -> Example | None:
    text = rec.get("text")
    if not isinstance(text, str):
        errors.append(f"{where}: 'text' must be a string, got {type(text).__name__ if 'text' in rec else 'nothing'}")
        return None
    if not text.strip():
        errors.append(f"{where}: 'text' is empty")
        return None
    if "labels" not in rec:
        errors.append(f"{where}: 'labels' is missing (use [] for an acceptable message)")
        return None
    labels = _parse_labels(rec["labels"], where, errors)
    if labels is None:
        return None
    role = rec.get("role", "agent") or "agent"
    if role not in ("agent", "buyer"):
        errors.append(f"{where}: 'role' must be 'agent' or 'buyer', got {role!r}")
        return None
    if role == "buyer" and labels:
        errors.append(f"{where}: buyer messages cannot carry labels (TAXONOMY: buyers are context)")
        return None
    subset = rec.get("subset", "")
    platform = rec.get("platform", "")
    if strict_meta:
        bad = []
        if subset not in SUBSETS:
            bad.append(f"'subset' must be one of {SUBSETS}, got {subset!r}")
        elif (subset in ("hard_negative", "plain_negative")) != (not labels):
            bad.append(f"subset {subset!r} does not agree with labels {list(labels)}")
        if platform not in PLATFORMS:
            bad.append(f"'platform' must be one of {PLATFORMS}, got {platform!r}")
        for key in ("id", "group"):
            if not isinstance(rec.get(key), str) or not rec.get(key):
                bad.append(f"'{key}' must be a non-empty string")
        if bad:
            errors.extend(f"{where}: {b}" for b in bad)
            return None
    rid = str(rec.get("id", "") or "")
    group = str(rec.get("group", "") or rid or "text:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12])
    known = {"text", "labels", "id", "group", "subset", "platform", "role"}
    return Example(text, labels, group, where, rid, subset, platform, role,
                   {k: v for k, v in rec.items() if k not in known})


def load_file(path: str | Path, *, strict_meta: bool = False) -> tuple[list[Example], list[str]]:
    """Load a labeled file (JSONL or CSV), validating every record.

    Parameters
    ----------
    path : str or Path
        ``.jsonl``/``.json`` (one object a line) or ``.csv`` (``text,labels``
        columns; labels joined by ``;`` or ``|``).
    strict_meta : bool, default False
        Also require the corpus metadata (``id``, ``group``, ``subset``,
        ``platform``), as the shipped corpus does.

    Returns
    -------
    examples : list[Example]
        The valid records, in file order.
    errors : list[str]
        One ``file:line: message`` per invalid record; invalid records are skipped.
    """
    p = Path(path)
    if not p.is_file():
        return [], [f"{p}: file not found"]
    errors: list[str] = []
    out: list[Example] = []
    if p.suffix.lower() == ".csv":
        try:
            items = list(iter_csv(p.read_bytes(), required=("text", "labels")))
        except ValueError as exc:
            return [], [f"{p}:1: {exc}"]
    else:
        with open(p, "rb") as fh:
            items = list(iter_jsonl(fh))
    for lineno, rec, error in items:
        where = f"{p}:{lineno}"
        if rec is None:
            errors.append(f"{where}: {error}")
            continue
        ex = _make(rec, where, errors, strict_meta)
        if ex is not None:
            out.append(ex)
    return out, errors


def load_corpus(directory: str | Path = CORPUS_DIR) -> tuple[list[Example], list[str]]:
    """Load every ``*.jsonl`` file of the shipped corpus with strict metadata checks."""
    examples: list[Example] = []
    errors: list[str] = []
    files = sorted(Path(directory).glob("*.jsonl"))
    if not files:
        return [], [f"{directory}: no *.jsonl corpus files"]
    for f in files:
        ex, err = load_file(f, strict_meta=True)
        examples.extend(ex)
        errors.extend(err)
    return examples, errors


def _key(text: str) -> str:
    from kefuguard.text import normalize

    return normalize(text).compact


def near_duplicates(examples: list[Example], threshold: float = 0.8) -> list[tuple[Example, Example, float]]:
    """Pairs in different splits whose character-3-gram Jaccard is ≥ ``threshold``.

    Uses a sparse binary matrix product for the intersections, so the whole
    corpus is compared in seconds rather than by a Python double loop.
    """
    import numpy as np
    from scipy import sparse

    grams: dict[str, int] = {}
    rows, cols = [], []
    sizes = []
    for i, ex in enumerate(examples):
        s = _key(ex.text)
        g = {s[j : j + 3] for j in range(max(1, len(s) - 2))}
        sizes.append(len(g))
        for t in g:
            rows.append(i)
            cols.append(grams.setdefault(t, len(grams)))
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(examples), len(grams)))
    inter = (m @ m.T).tocoo()
    sizes_a = np.asarray(sizes)
    out = []
    for i, j, v in zip(inter.row, inter.col, inter.data):
        if i >= j:
            continue
        jac = v / (sizes_a[i] + sizes_a[j] - v)
        if jac >= threshold and examples[i].split != examples[j].split:
            out.append((examples[i], examples[j], float(jac)))
    return out


def _table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    lines = ["  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check(directory: str | Path = CORPUS_DIR, *, out=sys.stdout) -> int:
    """Validate the corpus and print balance tables; return the number of problems."""
    examples, errors = load_corpus(directory)
    problems = list(errors)
    seen: dict[str, Example] = {}
    for ex in examples:
        k = _key(ex.text)
        if k in seen:
            problems.append(f"{ex.where}: exact duplicate of {seen[k].where} (after normalisation)")
        else:
            seen[k] = ex
    ids: dict[str, str] = {}
    for ex in examples:
        if ex.id in ids:
            problems.append(f"{ex.where}: duplicate id {ex.id!r} (first at {ids[ex.id]})")
        ids.setdefault(ex.id, ex.where)
    for a, b, jac in near_duplicates(examples):
        problems.append(
            f"{b.where}: near-duplicate of {a.where} (3-gram Jaccard {jac:.2f}) in another split "
            f"({a.split} vs {b.split}); give them the same group"
        )
    print(f"corpus: {len(examples)} valid messages in {directory}", file=out)
    pos = Counter(lab for ex in examples for lab in ex.labels)
    by = defaultdict(Counter)
    for ex in examples:
        for lab in ex.labels or ("(none)",):
            by[lab][ex.subset] += 1
    rows = []
    for lab in list(LABELS) + ["(none)"]:
        rows.append([lab] + [by[lab][s] for s in SUBSETS] + [sum(by[lab].values())])
    print("\nlabel x subset", file=out)
    print(_table(rows, ["label", *SUBSETS, "total"]), file=out)
    split_rows = []
    for lab in list(LABELS) + ["(none)"]:
        c = Counter(ex.split for ex in examples if (lab in ex.labels) or (lab == "(none)" and not ex.labels))
        split_rows.append([lab] + [c[s] for s in SPLITS])
    print("\nlabel x split", file=out)
    print(_table(split_rows, ["label", *SPLITS]), file=out)
    plat = Counter(ex.platform for ex in examples)
    print("\nplatforms: " + ", ".join(f"{p} {plat[p]}" for p in PLATFORMS), file=out)
    multi = sum(1 for ex in examples if len(ex.labels) > 1)
    print(f"multi-label messages: {multi}; groups: {len({ex.group for ex in examples})}", file=out)
    neg = sum(1 for ex in examples if not ex.labels)
    hard = sum(1 for ex in examples if ex.subset == "hard_negative")
    print(f"positives per label: {dict(pos)}; negatives {neg} (hard {hard})", file=out)
    if problems:
        print(f"\n{len(problems)} problem(s):", file=out)
        for p in problems:
            print("  " + p, file=out)
    else:
        print("\nno problems found", file=out)
    return len(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate the corpus and print balance tables")
    c.add_argument("--dir", default=str(CORPUS_DIR), help="corpus directory (default: data/corpus)")
    args = parser.parse_args(argv)
    return 1 if check(args.dir) else 0


if __name__ == "__main__":
    sys.exit(main())
