"""Reading JSONL and CSV records line by line, keeping bad records as errors.

Used by the CLI (scoring files) and by the training tools (labeled files), so
both report a bad record the same way: one error naming its line, and the rest
of the file goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Record", "iter_jsonl", "iter_csv"]

#: ``(line, record, error)``: exactly one of ``record`` and ``error`` is None.
Record = tuple[int, "dict[str, Any] | None", "str | None"]


def iter_jsonl(lines: Iterable[bytes]) -> Iterator[Record]:
    """Yield one ``(line, object, error)`` per non-blank line of JSON Lines bytes.

    A UTF-8 BOM on the first line and CRLF endings are accepted. Undecodable
    bytes, invalid JSON and non-object values become errors for that line only.
    """
    for lineno, raw in enumerate(lines, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, None, f"not valid UTF-8 at byte {exc.start} ({exc.reason})"
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(rec, dict):
            yield lineno, None, f"expected a JSON object, got {type(rec).__name__}"
        else:
            yield lineno, rec, None


def iter_csv(data: bytes, required: tuple[str, ...] = ("text",)) -> Iterator[Record]:
    """Yield one ``(line, row dict, error)`` per CSV record; ``line`` is where it starts.

    Undecodable bytes are kept (as surrogate escapes) so that only the rows
    containing them become errors. Quoted newlines are supported.

    Raises
    ------
    ValueError
        The header lacks a ``required`` column.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:  # checked now, not when the caller starts iterating
        raise ValueError(f"CSV header must contain {list(required)}, got {reader.fieldnames}")
    return _csv_rows(reader)


def _csv_rows(reader: csv.DictReader) -> Iterator[Record]:
    start = 2
    for rec in reader:
        lineno, start = start, reader.line_num + 1
        if None in rec:
            yield lineno, None, "more fields than the header has"
        elif any(isinstance(v, str) and any(0xDC80 <= ord(c) <= 0xDCFF for c in v) for v in rec.values()):
            yield lineno, None, "not valid UTF-8"
        else:
            yield lineno, {k: v for k, v in rec.items() if v is not None}, None
