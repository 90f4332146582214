"""Conversations: harassment timing, roles and context, platform profiles, the audit CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kefuguard import HarassmentConfig, ProfileError, load_profile
from kefuguard.conversation import parse_ts
from kefuguard.policy import available_platforms

FIXTURES = Path(__file__).with_name("fixtures")


def agent(text: str, ts=None) -> dict:
    return {"role": "agent", "text": text, **({"ts": ts} if ts is not None else {})}


def buyer(text: str, ts=None) -> dict:
    return {"role": "buyer", "text": text, **({"ts": ts} if ts is not None else {})}


def iso(h: int, m: int, s: int = 0, off: str = "+08:00") -> str:
    return f"2026-11-23T{h:02d}:{m:02d}:{s:02d}{off}"


# ---- harassment timing -------------------------------------------------------

def test_five_messages_in_ten_minutes_is_not_a_burst(scorer) -> None:
    msgs = [agent(f"亲，您看下这款{i}", iso(10, i)) for i in range(5)]
    assert not scorer.score_conversation(msgs).harassment


def test_six_messages_in_ten_minutes_is_a_burst(scorer) -> None:
    msgs = [agent(f"亲，您看下这款{i}", iso(10, i)) for i in range(6)]
    r = scorer.score_conversation(msgs, "pinduoduo")
    assert r.harassment and "harassment" in r.labels
    (ev,) = r.harassment_evidence
    assert ev["kind"] == "burst" and ev["messages"] == [0, 1, 2, 3, 4, 5]
    assert r.verdict == "violation"


def test_a_long_burst_is_one_piece_of_evidence(scorer) -> None:
    msgs = [agent(f"亲，在吗{i}", iso(10, i)) for i in range(12)]  # 12 messages over 11 minutes
    r = scorer.score_conversation(msgs)
    (ev,) = r.harassment_evidence
    assert ev["messages"] == list(range(12)) and ev["count"] == 12


def test_six_messages_spread_over_more_than_the_window_is_not_a_burst(scorer) -> None:
    msgs = [agent(f"亲，您看下这款{i}", iso(10, 2 * i + (1 if i == 5 else 0))) for i in range(6)]  # 11 min
    assert not scorer.score_conversation(msgs).harassment


def test_a_buyer_reply_resets_the_burst(scorer) -> None:
    msgs = [agent(f"好的{i}", iso(10, i)) for i in range(3)] + [buyer("嗯", iso(10, 3))]
    msgs += [agent(f"收到{i}", iso(10, 4 + i)) for i in range(3)]
    assert not scorer.score_conversation(msgs).harassment


def test_back_and_forth_is_never_harassment(scorer) -> None:
    msgs = []
    for i in range(20):
        msgs += [buyer(f"问题{i}", iso(23, i, 0)), agent(f"亲，回答{i}", iso(23, i, 30))]
    assert not scorer.score_conversation(msgs).harassment


def test_burst_threshold_is_configurable(scorer) -> None:
    msgs = [agent(f"亲{i}", iso(10, i)) for i in range(3)]
    cfg = HarassmentConfig(burst_messages=2, burst_window=300)
    assert scorer.score_conversation(msgs, config=cfg).harassment


@pytest.mark.parametrize(
    "ts,night",
    [
        (iso(23, 30), True),  # 23:30 in Beijing
        (iso(7, 59), True),
        (iso(8, 0), False),
        (iso(21, 59), False),
        (iso(15, 30, off="+00:00"), False),  # 23:30 in Beijing, but the timestamp's own offset is UTC
        (iso(23, 30, off="-05:00"), True),  # local night in New York
        ("2026-11-23T23:30:00Z", True),
        (1763911800, True),  # epoch seconds read in +08:00: 2025-11-23 23:30
    ],
)
def test_night_hours_use_the_timestamps_own_offset(scorer, ts, night: bool) -> None:
    r = scorer.score_conversation([agent("亲，还在考虑吗？", ts)])
    assert r.harassment is night
    if night:
        assert r.harassment_evidence[0]["kind"] == "night"


def test_answering_a_buyer_at_night_is_fine(scorer) -> None:
    msgs = [buyer("你好，还有货吗", iso(23, 10)), agent("亲，有的哦", iso(23, 12))]
    assert not scorer.score_conversation(msgs).harassment


def test_night_message_after_the_buyer_went_quiet(scorer) -> None:
    msgs = [buyer("我再想想", iso(21, 0)), agent("亲，想好了吗", iso(23, 15))]
    r = scorer.score_conversation(msgs)
    assert r.harassment and "quiet for 135 min" in r.harassment_evidence[0]["reason"]


def test_mixed_and_missing_timestamps(scorer) -> None:
    base = parse_ts(iso(10, 0)).timestamp()
    msgs = [agent("亲1", iso(10, 0)), agent("亲2", base + 60), agent("亲3"), agent("亲4", iso(10, 2)),
            agent("亲5", base + 180), agent("亲6", iso(10, 4)), agent("亲7", base + 300)]
    r = scorer.score_conversation(msgs)
    assert r.harassment and r.harassment_evidence[0]["messages"] == [0, 1, 3, 4, 5, 6]
    untimed = [agent(f"亲{i}") for i in range(10)]
    assert not scorer.score_conversation(untimed).harassment


@pytest.mark.parametrize(
    "msgs,exc,match",
    [
        ([agent("hi", "2026-11-23T23:30:00")], ValueError, r"messages\[0\]\['ts'\] must carry a UTC offset"),
        ([agent("hi", "yesterday+08:00")], ValueError, "not ISO-8601"),
        ([agent("hi", [1])], TypeError, "got list"),
        ([{"role": "bot", "text": "hi"}], ValueError, r"messages\[0\]\['role'\]"),
        ([{"role": "agent", "text": None}], TypeError, r"messages\[0\]\['text'\] must be str"),
        (["hi"], TypeError, r"messages\[0\] must be a dict"),
        ("hi", TypeError, "list of dicts"),
    ],
)
def test_bad_messages_name_the_index(scorer, msgs, exc, match: str) -> None:
    with pytest.raises(exc, match=match):
        scorer.score_conversation(msgs)


# ---- roles and context -------------------------------------------------------

def test_buyer_abuse_is_context_not_a_violation(scorer) -> None:
    r = scorer.score_conversation([buyer("你们这什么垃圾店，傻逼客服"), agent("非常抱歉给您带来不好的体验，我马上帮您处理")])
    assert r.labels == () and r.verdict == "pass" and r.score == 100


def test_agent_quoting_the_buyer_is_not_abuse(scorer) -> None:
    text = "您说我们是傻逼客服，非常抱歉让您这么生气，我马上帮您处理退款"
    assert "abuse" in scorer.score(text).labels  # alone, it looks like abuse
    r = scorer.score_conversation([buyer("你们就是傻逼客服"), agent(text)])
    assert "abuse" not in r.labels
    assert r.notes[0]["kind"] == "quoting_buyer" and r.notes[0]["message"] == 1


def test_agent_insulting_back_is_still_abuse(scorer) -> None:
    r = scorer.score_conversation([buyer("你们就是一群傻逼"), agent("你才傻逼，爱买不买")])
    assert "abuse" in r.labels
    assert any(n["kind"] == "retaliation" and n["buyer_message"] == 0 for n in r.notes)


def test_evidence_spans_index_the_original_text(scorer) -> None:
    msgs = [buyer("在吗"), agent("亲 加 薇 信 abc12345，這款面霜用一週斑就全沒了，你個ＳＢ")]
    r = scorer.score_conversation(msgs)
    text = msgs[1]["text"]
    found = 0
    for lab, items in r.messages[1].evidence.items():
        for ev in items:
            assert text[ev["start"] : ev["end"]] == ev["text"]
            found += 1
    assert found >= 3 and {"off_platform", "abuse"} <= set(r.labels)


# ---- platform profiles ---------------------------------------------------------

def test_every_shipped_profile_covers_every_label() -> None:
    assert set(available_platforms()) == {"taobao", "tmall", "pinduoduo", "jd", "douyin", "kuaishou", "xiaohongshu"}
    from kefuguard.labels import ALL_LABELS

    for pid in available_platforms():
        prof = load_profile(pid)
        for lab in ALL_LABELS:
            for sev in ("low", "medium", "high", "critical"):
                assert prof.rule_for(lab, sev).rule


def test_pinduoduo_tiers(scorer) -> None:
    prof = load_profile("pinduoduo")
    assert "3天" in prof.rule_for("abuse", "medium").penalty
    assert "7天" in prof.rule_for("abuse", "high").penalty
    assert "15天" in prof.rule_for("abuse", "critical").penalty
    r = scorer.score_conversation([agent("再啰嗦我找人收拾你")], "pinduoduo")
    v = [x for x in r.violations if x["label"] == "abuse"][0]
    assert v["severity"] == "critical" and "15天" in v["penalty"] and r.verdict == "violation" and r.score == 0


def test_override_file_changes_one_row(tmp_path: Path, scorer) -> None:
    f = tmp_path / "mine.tsv"
    f.write_text("platform\tpinduoduo\t拼多多（本店）\nrule\trude_tone\t*\t5\tno\t本店服务规范第3条\t培训一次\n", encoding="utf-8")
    prof = load_profile(f)
    assert prof.rule_for("rude_tone", "low").rule == "本店服务规范第3条"
    assert prof.rule_for("abuse", "high").penalty == load_profile("pinduoduo").rule_for("abuse", "high").penalty
    r = scorer.score_conversation([agent("慢就别买，爱买不买")], f)
    assert r.score == 95 and r.violations[0]["platform_rule"] == "本店服务规范第3条"


@pytest.mark.parametrize(
    "body,match",
    [
        ("platform\tnewshop\t新店\nscoring\tpass_at\t100\tviolation_below\t60\nrule\tabuse\t*\t10\tno\tx\ty\n",
         r"no rule rows for label\(s\)"),
        ("platform\tpinduoduo\tx\nrule\tabuse\tsevere\t10\tno\tx\ty\n", r"mine.tsv:2: severity must be"),
        ("platform\tpinduoduo\tx\nrule\tcheating\t*\t10\tno\tx\ty\n", r"mine.tsv:2: unknown label 'cheating'"),
        ("platform\tpinduoduo\tx\n\n# c\nrule\tabuse\t*\tten\tno\tx\ty\n", r"mine.tsv:4: deduction must be"),
        ("platform\tpinduoduo\tx\nscoring\tpass_at\t50\tviolation_below\t60\n", r"mine.tsv:2: need 0 <="),
        ("platform\tpinduoduo\tx\nfoo\tbar\n", r"mine.tsv:2: unknown line type 'foo'"),
        ("rule\tabuse\t*\t10\tno\tx\ty\n", r"no 'platform' line"),
    ],
)
def test_invalid_profiles_name_file_and_line(tmp_path: Path, body: str, match: str) -> None:
    f = tmp_path / "mine.tsv"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ProfileError, match=match):
        load_profile(f)


def test_unknown_platform_is_a_value_error(scorer) -> None:
    with pytest.raises(ValueError, match="platform must be one of"):
        scorer.score_conversation([agent("好的")], "amazon")


# ---- audit CLI ---------------------------------------------------------------

def test_audit_cli_on_fixture(tmp_path: Path) -> None:
    out = tmp_path / "report.jsonl"
    p = subprocess.run([sys.executable, "-m", "kefuguard.cli", "audit", str(FIXTURES / "conversations.jsonl"),
                        "--platform", "pinduoduo", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr  # some records were bad
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 6]
    by_id = {r.get("id"): r for r in recs}
    assert by_id["polite"]["verdict"] == "pass" and by_id["polite"]["score"] == 100
    assert by_id["rude"]["verdict"] == "review" and by_id["rude"]["labels"] == ["rude_tone"]
    night = by_id["contact-at-night"]
    assert night["verdict"] == "violation" and {"off_platform", "harassment"} <= set(night["labels"])
    assert all(v["platform_rule"] and v["penalty"] for v in night["violations"])
    assert night["flagged_messages"][0]["index"] == 1
    assert "invalid JSON" in recs[3]["error"] and "missing 'messages'" in recs[4]["error"]
    assert "'role'" in recs[5]["error"]
    assert "conversations: 6, audited: 3, errors: 3" in p.stderr
    assert "a01" in p.stderr and "a02" in p.stderr


def test_a_single_message_result_names_its_platform_rule(scorer) -> None:
    r = scorer.score("再啰嗦我找人收拾你")
    (v,) = [x for x in load_profile("pinduoduo").violations(r) if x["label"] == "abuse"]
    assert v["severity"] == "critical" and "15天" in v["penalty"] and v["fatal"]
    assert load_profile("jd").violations(scorer.score("亲，已经帮您催促快递了哦")) == []
