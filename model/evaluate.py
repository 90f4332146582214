"""Evaluate a bundle on labeled data, beside the keyword-only baseline.

Usage::

    python -m model.evaluate [--bundle PATH] [--data FILE ...] [--split test]
                             [--real ../shared/data/real/real.jsonl] [--json out.json]

Without ``--data`` the shipped corpus's ``--split`` (default ``test``) is used.
Prints per-label precision / recall / F1 for the hybrid scorer, the model alone
and the rules alone (the keyword baseline), per-subset recall and false-flag
rates, and, with ``--real``, results on the real-world evaluation file (which is
read only here and never trained or tuned on).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from kefuguard.labels import LABELS

from .data import Example, load_corpus, load_file

__all__ = ["label_metrics", "subset_metrics", "evaluate_modes", "format_report", "real_report", "main"]

MODES = ("hybrid", "model", "rules")


def label_metrics(gold: list[tuple[str, ...]], pred: list[tuple[str, ...]]) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support, plus macro and micro F1."""
    out: dict[str, Any] = {}
    tp_all = fp_all = fn_all = 0
    f1s = []
    for lab in LABELS:
        tp = sum(1 for g, p in zip(gold, pred) if lab in g and lab in p)
        fp = sum(1 for g, p in zip(gold, pred) if lab not in g and lab in p)
        fn = sum(1 for g, p in zip(gold, pred) if lab in g and lab not in p)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[lab] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        f1s.append(f1)
    out["macro_f1"] = sum(f1s) / len(f1s)
    p = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    r = tp_all / (tp_all + fn_all) if tp_all + fn_all else 0.0
    out["micro_f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return out


def subset_metrics(examples: list[Example], pred: list[tuple[str, ...]]) -> dict[str, Any]:
    """Per subset: recall of gold labels for positives, false-flag rate for negatives."""
    acc: dict[str, list[float]] = defaultdict(list)
    for ex, p in zip(examples, pred):
        key = ex.subset or "unknown"
        if ex.labels:
            acc[key].append(sum(1 for lab in ex.labels if lab in p) / len(ex.labels))
        else:
            acc[key].append(1.0 if p else 0.0)
    out = {}
    for key, vals in sorted(acc.items()):
        metric = "false_flag_rate" if key.endswith("negative") else "recall"
        out[key] = {metric: sum(vals) / len(vals), "n": len(vals)}
    return out


def evaluate_modes(bundle: str | Path | None, examples: list[Example], modes=MODES) -> dict[str, Any]:
    """Score ``examples`` in each mode; return label and subset metrics per mode."""
    from kefuguard import Scorer

    texts = [ex.text for ex in examples]
    gold = [ex.labels for ex in examples]
    report: dict[str, Any] = {"n": len(examples)}
    for mode in modes:
        scorer = Scorer.load(bundle, mode=mode)
        pred = [r.labels for r in scorer.score_batch(texts)]
        report[mode] = {"labels": label_metrics(gold, pred), "subsets": subset_metrics(examples, pred)}
    return report


def format_report(report: dict[str, Any], title: str) -> str:
    """Render :func:`evaluate_modes` output as plain-text tables."""
    modes = [m for m in MODES if m in report]
    lines = [f"== {title} ({report['n']} messages)", ""]
    head = f"{'label':<20}{'support':>8}" + "".join(f"{m + ' P':>10}{'R':>7}{'F1':>7}" for m in modes)
    lines += [head, "-" * len(head)]
    for lab in LABELS:
        row = f"{lab:<20}{report[modes[0]]['labels'][lab]['support']:>8}"
        for m in modes:
            d = report[m]["labels"][lab]
            row += f"{d['precision']:>10.3f}{d['recall']:>7.3f}{d['f1']:>7.3f}"
        lines.append(row)
    lines.append(f"{'macro F1':<28}" + "".join(f"{'':>17}{report[m]['labels']['macro_f1']:>7.3f}" for m in modes))
    lines.append("")
    subsets = sorted({s for m in modes for s in report[m]["subsets"]})
    head = f"{'subset':<16}{'n':>6}{'metric':>17}" + "".join(f"{m:>10}" for m in modes)
    lines += [head, "-" * len(head)]
    for s in subsets:
        first = report[modes[0]]["subsets"][s]
        metric = "false_flag_rate" if "false_flag_rate" in first else "recall"
        row = f"{s:<16}{first['n']:>6}{metric:>17}"
        for m in modes:
            row += f"{report[m]['subsets'][s][metric]:>10.3f}"
        lines.append(row)
    return "\n".join(lines)


def real_report(bundle: str | Path | None, path: str | Path) -> tuple[dict[str, Any], str]:
    """Evaluate on the real-world file (``expect`` flag/clean per record).

    Returns per ``set`` and mode: the share of records flagged, and for
    ``expect: flag`` records the share flagged with one of ``labels_any``.
    """
    from kefuguard import Scorer

    recs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                recs.append(json.loads(line))
    by_set: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        by_set[r["set"]].append(r)
    out: dict[str, Any] = {}
    for mode in MODES:
        scorer = Scorer.load(bundle, mode=mode)
        res = scorer.score_batch([r["text"] for r in recs])
        for r, s in zip(recs, res):
            r.setdefault("_pred", {})[mode] = s.labels
    lines = [f"== real-world evaluation: {path} ({len(recs)} records; evaluation only)", ""]
    head = f"{'set':<28}{'n':>6}{'expect':>8}{'metric':>14}" + "".join(f"{m:>10}" for m in MODES)
    lines += [head, "-" * len(head)]
    for name, rs in sorted(by_set.items()):
        expect = rs[0]["expect"]
        row_vals = {}
        for mode in MODES:
            if expect == "flag":
                hit = sum(1 for r in rs if set(r["_pred"][mode]) & set(r.get("labels_any", [])))
            else:
                hit = sum(1 for r in rs if r["_pred"][mode])
            row_vals[mode] = hit / len(rs)
        metric = "recall" if expect == "flag" else "flagged"
        out[name] = {"n": len(rs), "expect": expect, metric: row_vals}
        lines.append(f"{name:<28}{len(rs):>6}{expect:>8}{metric:>14}" + "".join(f"{row_vals[m]:>10.3f}" for m in MODES))
    return out, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the shipped bundle)")
    parser.add_argument("--data", action="append", default=[], help="labeled JSONL/CSV file (repeatable)")
    parser.add_argument("--split", default="test", choices=("train", "dev", "test", "all"),
                        help="split of the shipped corpus when no --data is given (default: test)")
    parser.add_argument("--real", default=None, help="real-world evaluation file (evaluation only); skipped if absent")
    parser.add_argument("--json", default=None, help="also write the metrics as JSON here")
    args = parser.parse_args(argv)
    if args.data:
        examples, errors = [], []
        for f in args.data:
            ex, err = load_file(f)
            examples += ex
            errors += err
        title = ", ".join(args.data)
    else:
        examples, errors = load_corpus()
        if args.split != "all":
            examples = [ex for ex in examples if ex.split == args.split]
        title = f"corpus split {args.split}"
    for e in errors:
        print(f"skipped: {e}", file=sys.stderr)
    if not examples:
        print("error: no valid labeled records to evaluate", file=sys.stderr)
        return 2
    report = evaluate_modes(args.bundle, examples)
    print(format_report(report, title))
    if args.real:
        if Path(args.real).is_file():
            real, text = real_report(args.bundle, args.real)
            report["real"] = real
            print()
            print(text)
        else:
            print(f"note: {args.real} not found; real-world evaluation skipped", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
