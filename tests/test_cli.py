"""The kefuguard command: single messages, files with bad records, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kefuguard.cli", *args], input=stdin,
                          capture_output=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("mode", ["hybrid", "model", "rules"])
def test_single_message(mode: str, tmp_path: Path) -> None:
    p = run("score", "--mode", mode, "加我微信 abc12345 私下转账便宜五十", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "off_platform" in json.loads(p.stdout)["labels"]
    p = run("score", "--mode", mode, "亲，已经帮您催促快递了哦，请耐心等待", cwd=tmp_path)
    assert json.loads(p.stdout)["labels"] == []


def test_rude_message_from_the_readme() -> None:
    out = json.loads(run("score", "你是不是傻，详情页都看不懂吗").stdout)
    assert {"abuse", "rude_tone"} & set(out["labels"])


def test_jsonl_file_with_bad_records(tmp_path: Path) -> None:
    src = tmp_path / "chats.jsonl"
    src.write_bytes(
        b"\xef\xbb\xbf" + '{"id": 1, "text": "加我微信 abc12345"}\r\n'.encode()
        + b"{not json\n"
        + '{"id": 3}\n{"id": 4, "text": 42}\n'.encode()
        + b'{"id": 5, "text": "\xff\xfe"}\n'
        + "\n".encode()
        + '{"id": 7, "text": "好的亲"}\n'.encode()
    )
    out = tmp_path / "out.jsonl"
    p = run("score", "-i", str(src), "-o", str(out))
    assert p.returncode == 1
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 7]
    assert "off_platform" in recs[0]["labels"] and recs[0]["id"] == 1
    assert "invalid JSON" in recs[1]["error"] and "missing 'text'" in recs[2]["error"]
    assert "must be a string, got int" in recs[3]["error"] and "UTF-8" in recs[4]["error"]
    assert recs[5]["labels"] == []
    err = p.stderr.decode()
    assert "records: 6, scored: 2, flagged: 1, errors: 4" in err and "off_platform: 1" in err


def test_csv_stdin_to_stdout_with_quoted_newlines() -> None:
    data = 'id,text\n1,"好评返现\n五元"\n2,好的亲\n'.encode()
    p = run("score", "-i", "-", "--format", "csv", "-o", "-", stdin=data)
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert [r["line"] for r in recs] == [2, 4]
    assert "review_manipulation" in recs[0]["labels"] and recs[1]["labels"] == []


def test_all_good_file_exits_zero(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"text": f"好的亲{i}"}, ensure_ascii=False) + "\n" for i in range(1200)),
                   encoding="utf-8")
    p = run("score", "-i", str(src), "-o", str(tmp_path / "o.jsonl"))
    assert p.returncode == 0
    assert len((tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()) == 1200


@pytest.mark.parametrize(
    "args",
    [(), ("score",), ("score", "x", "-i", "y.jsonl"), ("score", "--mode", "fast", "x"), ("score", "-i", "/nonexistent.jsonl")],
)
def test_usage_errors_exit_two(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 2


def test_csv_without_text_column_is_a_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("msg\n你好\n", encoding="utf-8")
    p = run("score", "-i", str(src))
    assert p.returncode == 2 and "text" in p.stderr.decode()


def test_explain_highlights_evidence() -> None:
    p = run("score", "--explain", "加我微信 abc12345")
    out = p.stdout.decode()
    assert "[加我微信 abc12345]" in out or "\x1b[1;31m" in out  # overlapping evidence merged
    assert "contact:加我微信" in out and "=> off_platform" in out


def test_csv_with_bad_bytes_crlf_and_bom_loses_nothing(tmp_path: Path) -> None:
    src = tmp_path / "chats.csv"
    src.write_bytes(
        b"\xef\xbb\xbfid,text\r\n"
        + "1,好的亲\r\n".encode()
        + b"2,\xff\xfe\r\n"
        + '3,"加我微信\r\nabc12345"\r\n'.encode()
        + "4,退款已处理\r\n".encode()
    )
    out = tmp_path / "out.jsonl"
    p = run("score", "-i", str(src), "-o", str(out))
    assert p.returncode == 1
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in recs] == [2, 3, 4, 6]
    assert "UTF-8" in recs[1]["error"] and "off_platform" in recs[2]["labels"]
    assert "records: 4, scored: 3, flagged: 1, errors: 1" in p.stderr.decode()
