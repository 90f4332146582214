"""Command line: ``kefuguard score``.

Examples::

    kefuguard score "你是不是傻，详情页都看不懂吗"
    kefuguard score -i chats.jsonl -o results.jsonl
    cat chats.csv | kefuguard score -i - --format csv -o -

Exit status: 0 when every record was scored, 1 when some records were bad (each
becomes an error record naming its line), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ._version import __version__
from .errors import KefuguardError
from .labels import LABELS
from .records import iter_csv, iter_jsonl

__all__ = ["main"]

_BATCH = 512


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kefuguard", description="Flag misconduct in customer-service agent messages.")
    p.add_argument("--version", action="version", version=f"kefuguard {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score one message or a file of messages",
                       description="Score TEXT, or every record of -i FILE (JSONL or CSV with a 'text' column).")
    s.add_argument("text", nargs="?", help="a message to score (omit when using -i)")
    s.add_argument("-i", "--input", help="input file (.jsonl or .csv), '-' for stdin")
    s.add_argument("-o", "--output", default="-", help="output JSONL file, '-' for stdout (default)")
    s.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto",
                   help="input format (default: from the file extension; stdin defaults to jsonl)")
    s.add_argument("--mode", choices=("hybrid", "model", "rules"), default="hybrid", help="which layers decide (default hybrid)")
    s.add_argument("--bundle", help="model bundle directory (default: the shipped bundle)")
    s.add_argument("--rules", help="rules directory (default: the shipped rules)")
    s.add_argument("--role", choices=("agent", "buyer"), default="agent", help="who wrote the messages (default agent)")
    s.add_argument("--explain", action="store_true", help="show the text with evidence highlighted (single message)")
    a = sub.add_parser("audit", help="QA-audit conversations (one JSON object a line)",
                       description="Audit conversations: one JSON object a line with 'messages' "
                                   "([{role, text, ts}]) and optional 'id' and 'agent_id'.")
    a.add_argument("input", help="conversations JSONL file, '-' for stdin")
    a.add_argument("-o", "--output", default="-", help="report JSONL, '-' for stdout (default)")
    a.add_argument("--platform", default="taobao", help="platform profile id or profile file (default taobao)")
    a.add_argument("--bundle", help="model bundle directory (default: the shipped bundle)")
    a.add_argument("--rules", help="rules directory (default: the shipped rules)")
    a.add_argument("--burst-messages", type=int, default=5, help="harassment: more than N agent messages ... (default 5)")
    a.add_argument("--burst-window", type=float, default=600, help="... within this many seconds (default 600)")
    a.add_argument("--night", default="22-8", help="unsuitable hours START-END, local to each timestamp (default 22-8)")
    a.add_argument("--quiet-after", type=float, default=1800,
                   help="night contact counts when the buyer has been quiet this many seconds (default 1800)")
    return p


def _records(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
    """Yield ``(line, text or None, record or error record)`` for each input record."""
    if fmt == "csv":
        try:
            items = iter_csv(stream.read())
        except ValueError as exc:
            raise _UsageError(str(exc)) from exc
    else:
        items = iter_jsonl(stream)
    for lineno, rec, error in items:
        if rec is None:
            yield lineno, None, {"error": f"line {lineno}: {error}"}
        elif "text" not in rec:
            yield lineno, None, {"error": f"line {lineno}: missing 'text'", "id": rec.get("id")}
        elif not isinstance(rec["text"], str):
            yield lineno, None, {"error": f"line {lineno}: 'text' must be a string, got {type(rec['text']).__name__}",
                                 "id": rec.get("id")}
        else:
            yield lineno, rec["text"], rec


class _UsageError(Exception):
    pass


@contextmanager
def _streams(inp: str, out: str) -> Iterator[tuple[IO[bytes], IO[str]]]:
    """Open the input (binary, '-' for stdin) and output (text, '-' for stdout); close what was opened."""
    try:
        fin = sys.stdin.buffer if inp == "-" else open(inp, "rb")
    except OSError as exc:
        raise _UsageError(f"cannot open input {inp}: {exc.strerror}") from exc
    try:
        fout = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")
    except OSError as exc:
        if fin is not sys.stdin.buffer:
            fin.close()
        raise _UsageError(f"cannot open output {out}: {exc.strerror}") from exc
    try:
        yield fin, fout
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()
        if fout is not sys.stdout:
            fout.close()
        else:
            fout.flush()


class _Progress:
    """A one-line progress counter on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()

    def update(self, n: int) -> None:
        if self.on:
            sys.stderr.write(f"\rscored {n} records")
            sys.stderr.flush()

    def done(self) -> None:
        if self.on:
            sys.stderr.write("\n")


def _highlight(text: str, spans: list[dict[str, Any]]) -> str:
    """Render ``text`` with evidence spans highlighted (ANSI on a terminal, [..] otherwise)."""
    tty = sys.stdout.isatty()
    merged: list[list[int]] = []
    for start, end in sorted({(h["start"], h["end"]) for h in spans}):
        if merged and start <= merged[-1][1]:  # overlapping evidence: one highlight
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start])
        seg = text[start:end]
        out.append(f"\033[1;31m{seg}\033[0m" if tty else f"[{seg}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _score_file(scorer: Any, args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt == "auto":
        fmt = "csv" if (args.input or "").lower().endswith(".csv") else "jsonl"
    with _streams(args.input, args.output) as (fin, fout):
        return _score_stream(scorer, args, fmt, fin, fout)


def _score_stream(scorer: Any, args: argparse.Namespace, fmt: str, fin: IO[bytes], fout: IO[str]) -> int:
    records = _records(fin, fmt)
    counts: Counter[str] = Counter()
    total = errors = flagged = 0
    progress = _Progress()
    pending: list[tuple[int, str | None, dict[str, Any]]] = []

    def flush() -> None:
        nonlocal errors, flagged
        texts = [t for _, t, _ in pending if t is not None]
        results = iter(scorer.score_batch(texts, role=args.role)) if texts else iter(())
        for lineno, t, rec in pending:
            if t is None:
                errors += 1
                out = {"line": lineno, **rec}
            else:
                r = next(results)
                out = {"line": lineno}
                if rec and "id" in rec:
                    out["id"] = rec["id"]
                out.update(r.to_dict())
                counts.update(r.labels)
                flagged += r.flagged
            fout.write(json.dumps(out, ensure_ascii=False) + "\n")
        pending.clear()
        progress.update(total)

    try:
        for item in records:
            pending.append(item)
            total += 1
            if len(pending) >= _BATCH:
                flush()
        flush()
    finally:
        progress.done()
    summary = [f"records: {total}, scored: {total - errors}, flagged: {flagged}, errors: {errors}"]
    summary += [f"  {lab}: {counts[lab]}" for lab in LABELS if counts[lab]]
    print("\n".join(summary), file=sys.stderr)
    return 1 if errors else 0


def _audit(args: argparse.Namespace) -> int:
    from .conversation import HarassmentConfig
    from .policy import load_profile
    from .scorer import Scorer

    try:
        start, end = (int(x) for x in args.night.split("-"))
        config = HarassmentConfig(args.burst_messages, args.burst_window, start, end, args.quiet_after)
    except ValueError as exc:
        raise _UsageError(f"invalid harassment settings: {exc}") from exc
    try:
        profile = load_profile(args.platform)
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc
    scorer = Scorer.load(args.bundle, rules=args.rules)
    verdicts: Counter[str] = Counter()
    per_agent: dict[str, Counter[str]] = {}
    total = errors = 0
    with _streams(args.input, args.output) as (fin, fout):
        for lineno, rec, error in iter_jsonl(fin):
            total += 1
            out: dict[str, Any] = {"line": lineno}
            try:
                if rec is None:
                    raise ValueError(error)
                msgs = rec.get("messages")
                if msgs is None:
                    raise ValueError("missing 'messages'")
                res = scorer.score_conversation(msgs, profile, config=config)
            except (TypeError, ValueError) as exc:
                errors += 1
                out.update({"id": rec.get("id") if rec else None, "error": f"line {lineno}: {exc}"})
                fout.write(json.dumps(out, ensure_ascii=False) + "\n")
                continue
            d = res.to_dict()
            out.update({"id": rec.get("id"), "agent_id": rec.get("agent_id")})
            out.update({k: d[k] for k in ("verdict", "score", "severity", "labels", "platform", "violations",
                                          "harassment", "harassment_evidence", "notes")})
            out["flagged_messages"] = [
                {"index": i, "text": msgs[i]["text"], "labels": m["labels"], "evidence": m["evidence"]}
                for i, m in enumerate(d["messages"]) if m["labels"]
            ]
            fout.write(json.dumps(out, ensure_ascii=False) + "\n")
            verdicts[res.verdict] += 1
            if rec.get("agent_id") is not None:
                per_agent.setdefault(str(rec["agent_id"]), Counter()).update(res.labels)
    lines = [f"conversations: {total}, audited: {total - errors}, errors: {errors}  (platform {profile.id})",
             "verdict      count"] + [f"{v:<12} {verdicts[v]:>5}" for v in ("pass", "review", "violation")]
    if per_agent:
        labs = [lab for lab in LABELS + ("harassment",) if any(c[lab] for c in per_agent.values())]
        lines.append("agent".ljust(14) + "".join(f"{lab[:12]:>13}" for lab in labs))
        for agent in sorted(per_agent):
            lines.append(agent[:14].ljust(14) + "".join(f"{per_agent[agent][lab]:>13}" for lab in labs))
    print("\n".join(lines), file=sys.stderr)
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kefuguard`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "audit":
        try:
            return _audit(args)
        except (_UsageError, KefuguardError) as exc:
            print(f"kefuguard: error: {exc}", file=sys.stderr)
            return 2
    if args.text is None and args.input is None:
        parser.error("score needs TEXT or -i FILE")
    if args.text is not None and args.input is not None:
        parser.error("give either TEXT or -i FILE, not both")
    from .scorer import Scorer

    try:
        scorer = Scorer.load(args.bundle, mode=args.mode, rules=args.rules)
        if args.input is not None:
            return _score_file(scorer, args)
        result = scorer.score(args.text, role=args.role).to_dict()
    except _UsageError as exc:
        print(f"kefuguard: error: {exc}", file=sys.stderr)
        return 2
    except KefuguardError as exc:
        print(f"kefuguard: error: {exc}", file=sys.stderr)
        return 2
    if args.explain:
        # Highlight everything that counted: rule hits and the model's top n-grams.
        spans = list(result["hits"]) + [ev for items in result["evidence"].values() for ev in items]
        print(_highlight(args.text, spans))
        for h in result["hits"]:
            print(f"  {h['label']:<20} {h['action']:<5} {h['rule_id']}  [{h['start']}:{h['end']}] {h['text']!r}")
        for lab in result["labels"]:
            src = "+".join(result["sources"].get(lab, []))
            p = result["scores"].get(lab)
            print(f"=> {lab} (by {src}" + (f", p={p:.2f})" if p is not None else ")"))
            feats = [ev for ev in result["evidence"].get(lab, []) if ev["source"] == "model"]
            for ev in feats:
                print(f"     model n-gram {ev['feature']!r} weight {ev['weight']:+.2f}  [{ev['start']}:{ev['end']}] {ev['text']!r}")
        if not result["labels"]:
            print("=> no labels")
    else:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
