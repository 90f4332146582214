"""Table-driven rule tests (rule_cases.tsv) and rule-file validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefuguard import RulesError
from kefuguard.rules import RuleSet
from kefuguard.text import normalize

CASES = Path(__file__).with_name("rule_cases.tsv")


def _cases():
    for lineno, line in enumerate(CASES.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        text, expected, reason = line.split("\t")
        want = set() if expected == "-" else set(expected.split(","))
        yield pytest.param(text, want, id=f"L{lineno}:{reason}")


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load()


@pytest.mark.parametrize("text,want", list(_cases()))
def test_rule_table(rules: RuleSet, text: str, want: set[str]) -> None:
    hits = rules.match(normalize(text))
    got = {f"{h.label}:{h.rule_id}" for h in hits if h.action == "flag"}
    assert got == want
    for h in hits:  # every span indexes the original text
        assert 0 <= h.start < h.end <= len(text)
        assert text[h.start : h.end] == h.text


def test_hint_terms_are_reported_but_not_flags(rules: RuleSet) -> None:
    hits = rules.match(normalize("按广告法我们不能说'最好'"))
    assert [(h.label, h.action) for h in hits] == [("exaggeration", "hint")]


def test_longest_match_allow_list_beats_inner_term(rules: RuleSet) -> None:
    assert rules.match(normalize("滚筒")) == []
    assert [h.rule_id for h in rules.match(normalize("滚"))] == ["abuse:滚"]


def test_spans_map_back_through_normalisation(rules: RuleSet) -> None:
    text = "亲\u200b加 . 微 . 信吧"
    (hit,) = [h for h in rules.match(normalize(text)) if h.action == "flag"]
    assert text[hit.start : hit.end] == "加 . 微 . 信"


def _write(tmp_path: Path, name: str, body: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(body, encoding="utf-8")
    return d


@pytest.mark.parametrize(
    "name,body,message",
    [
        ("a.tsv", "# c\n傻逼\tabuse\tflag\t-\tok\n坏\tnot_a_label\tflag\t-\tx\n", "a.tsv:3: unknown label 'not_a_label'"),
        ("a.tsv", "傻逼\tabuse\tmaybe\t-\tx\n", "a.tsv:1: action must be one of"),
        ("a.tsv", "傻逼\tabuse\n", "a.tsv:1: expected 4 tab-separated fields"),
        ("a.tsv", "傻逼\tabuse\tflag\tsevere\tx\n", "a.tsv:1: severity must be"),
        ("a.tsv", "傻逼\tabuse\tflag\t-\tx\n傻 逼\tabuse\tflag\t-\tx\n", "a.tsv:2: term '傻 逼' duplicates a.tsv:1"),
        ("patterns.re", "p1\tprivacy\tflag\t-\t-\t(unclosed\n", "patterns.re:1: invalid regex"),
        ("patterns.re", "p1\tprivacy\tflag\t-\tmd5\t\\d+\n", "patterns.re:1: check must be one of"),
    ],
)
def test_invalid_rule_files_name_file_and_line(tmp_path: Path, name: str, body: str, message: str) -> None:
    d = _write(tmp_path, name, body)
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace("'", "'")):
        RuleSet.load(d)


def test_undecodable_rule_file(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "x.tsv").write_bytes("傻逼\tabuse\tflag\t-\tx\n".encode() + b"\xff\xfe\tabuse\tflag\t-\tx\n")
    with pytest.raises(RulesError, match=r"x.tsv:2: not valid UTF-8"):
        RuleSet.load(d)


def test_missing_rules_directory(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules directory not found"):
        RuleSet.load(tmp_path / "nope")


def test_custom_rules_directory_is_used(tmp_path: Path) -> None:
    d = _write(tmp_path, "mine.tsv", "菜鸡\tabuse\tflag\t-\tshop-specific insult\n")
    hits = RuleSet.load(d).match(normalize("你这个菜鸡"))
    assert [(h.rule_id, h.text) for h in hits] == [("mine:菜鸡", "菜鸡")]
