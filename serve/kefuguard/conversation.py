"""Conversation scoring: message results in context, harassment timing, QA verdicts.

Harassment is decided from metadata alone (TAXONOMY): a *burst* is more than
``burst_messages`` agent messages within ``burst_window`` seconds with no buyer
message in between; a *night* contact is an agent message between
``night_start`` and ``night_end`` o'clock in the timestamp's own UTC offset,
sent when the buyer has been quiet for at least ``quiet_after`` seconds (or
has not written at all), so answering a buyer who writes at night is fine.
Epoch timestamps carry no offset; they are read in ``default_offset_hours``
(China, +08:00, unless configured).

Context rules: an agent message whose only abuse evidence is a rule term the
buyer used just before, inside quote marks or after 您说/你说, is quoting, not
abusing; an agent who insults a buyer back is still abusive, and the evidence
says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .labels import BASE_SEVERITY, LABELS, severity_rank
from .policy import Profile, load_profile

if TYPE_CHECKING:
    from .scorer import MessageResult, Scorer

__all__ = ["HarassmentConfig", "ConversationResult", "score_conversation", "parse_ts"]


@dataclass(frozen=True)
class HarassmentConfig:
    """Thresholds for conversation-level harassment."""

    burst_messages: int = 5
    burst_window: float = 600.0
    night_start: int = 22
    night_end: int = 8
    quiet_after: float = 1800.0
    default_offset_hours: float = 8.0

    def __post_init__(self) -> None:
        if self.burst_messages < 1 or self.burst_window <= 0 or self.quiet_after < 0:
            raise ValueError(f"invalid harassment thresholds: {self}")
        if not (0 <= self.night_start <= 23 and 0 <= self.night_end <= 23):
            raise ValueError(f"night hours must be 0-23, got {self.night_start}-{self.night_end}")


@dataclass(frozen=True)
class ConversationResult:
    """The QA verdict on one conversation.

    Attributes
    ----------
    labels : tuple[str, ...]
        Labels found in agent messages, plus ``harassment``; taxonomy order.
    harassment : bool
        Whether the timing metadata shows harassment.
    harassment_evidence : tuple[dict, ...]
        Each burst or night contact, with message indices and times.
    messages : tuple[MessageResult, ...]
        Per-message results (buyer messages carry no labels).
    notes : tuple[dict, ...]
        Context decisions: quoting the buyer, retaliation after buyer abuse.
    severity : str or None
        Highest severity in the conversation.
    verdict : str
        ``"pass"``, ``"review"`` or ``"violation"``.
    score : int
        QA score: 100 minus the platform template's deductions (0 when a fatal
        item is present).
    platform : str
        The profile used.
    violations : tuple[dict, ...]
        One per flagged label: severity, platform rule, penalty, deduction,
        fatal, and the messages that carry it.
    """

    labels: tuple[str, ...]
    harassment: bool
    harassment_evidence: tuple[dict[str, Any], ...]
    messages: tuple["MessageResult", ...]
    notes: tuple[dict[str, Any], ...]
    severity: str | None
    verdict: str
    score: int
    platform: str
    violations: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "labels": list(self.labels),
            "verdict": self.verdict,
            "score": self.score,
            "severity": self.severity,
            "platform": self.platform,
            "harassment": self.harassment,
            "harassment_evidence": list(self.harassment_evidence),
            "violations": list(self.violations),
            "notes": list(self.notes),
            "messages": [m.to_dict() for m in self.messages],
        }


_ISO_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def parse_ts(ts: object, default_offset_hours: float = 8.0, where: str = "ts") -> datetime:
    """Parse an ISO-8601 timestamp with offset, or epoch seconds, to an aware datetime.

    The result keeps the timestamp's own offset (epoch seconds get
    ``default_offset_hours``), because night hours are local hours.

    Raises
    ------
    ValueError
        A string without an offset or not ISO-8601; a non-finite number.
    TypeError
        Anything other than ``str``, ``int`` or ``float``.
    """
    if isinstance(ts, bool) or not isinstance(ts, (str, int, float)):
        raise TypeError(f"{where} must be an ISO-8601 string or epoch seconds, got {type(ts).__name__}")
    if isinstance(ts, (int, float)):
        if ts != ts or ts in (float("inf"), float("-inf")):
            raise ValueError(f"{where} must be finite, got {ts!r}")
        tz = timezone(timedelta(hours=default_offset_hours))
        return datetime.fromtimestamp(float(ts), tz)
    s = ts.strip()
    if not _ISO_OFFSET.search(s):
        raise ValueError(f"{where} must carry a UTC offset (e.g. 2026-11-23T23:10:00+08:00), got {ts!r}")
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    except ValueError:
        raise ValueError(f"{where} is not ISO-8601: {ts!r}") from None
    return dt


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes, dict)) or not hasattr(messages, "__iter__"):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    out = []
    for i, m in enumerate(messages):  # type: ignore[arg-type]
        if not isinstance(m, dict):
            raise TypeError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        if m.get("role") not in ("agent", "buyer"):
            raise ValueError(f"messages[{i}]['role'] must be 'agent' or 'buyer', got {m.get('role')!r}")
        if not isinstance(m.get("text"), str):
            raise TypeError(f"messages[{i}]['text'] must be str, got {type(m.get('text')).__name__}")
        out.append(m)
    return out


def _is_night(dt: datetime, cfg: HarassmentConfig) -> bool:
    h = dt.hour
    if cfg.night_start > cfg.night_end:  # wraps midnight: 22-8
        return h >= cfg.night_start or h < cfg.night_end
    return cfg.night_start <= h < cfg.night_end


def _harassment(msgs: list[dict[str, Any]], times: list[datetime | None], cfg: HarassmentConfig) -> list[dict[str, Any]]:
    evidence: list[dict[str, Any]] = []
    # Bursts: runs of agent messages between buyer messages; slide a window over each run.
    run: list[int] = []
    reported: set[int] = set()

    def flush() -> None:
        timed = [i for i in run if times[i] is not None]
        lo = 0
        for hi in range(len(timed)):
            while (times[timed[hi]] - times[timed[lo]]).total_seconds() > cfg.burst_window:  # type: ignore[operator]
                lo += 1
            window = timed[lo : hi + 1]
            if len(window) <= cfg.burst_messages:
                continue
            if evidence and evidence[-1]["kind"] == "burst" and window[0] in reported:
                # the same burst goes on: grow its evidence instead of repeating it
                last = evidence[-1]
                last["messages"] = sorted(set(last["messages"]) | set(window))
                last["count"] = len(last["messages"])
                last["last"] = times[window[-1]].isoformat()  # type: ignore[union-attr]
                last["reason"] = f"{last['count']} agent messages with no buyer reply, more than {cfg.burst_messages} within {cfg.burst_window:.0f}s"
                reported.update(window)
            elif window[0] not in reported:
                reported.update(window)
                evidence.append({
                    "kind": "burst",
                    "messages": window,
                    "count": len(window),
                    "first": times[window[0]].isoformat(),  # type: ignore[union-attr]
                    "last": times[window[-1]].isoformat(),  # type: ignore[union-attr]
                    "reason": f"{len(window)} agent messages within {cfg.burst_window:.0f}s with no buyer reply",
                })
        run.clear()

    for i, m in enumerate(msgs):
        if m["role"] == "buyer":
            flush()
        else:
            run.append(i)
    flush()
    # Night contact after the buyer went quiet.
    last_buyer: datetime | None = None
    for i, m in enumerate(msgs):
        t = times[i]
        if m["role"] == "buyer":
            if t is not None:
                last_buyer = t
            continue
        if t is None or not _is_night(t, cfg):
            continue
        quiet = last_buyer is None or (t - last_buyer).total_seconds() >= cfg.quiet_after
        if quiet:
            since = "never wrote" if last_buyer is None else f"quiet for {(t - last_buyer).total_seconds() / 60:.0f} min"
            evidence.append({
                "kind": "night",
                "messages": [i],
                "time": t.isoformat(),
                "reason": f"agent message at {t:%H:%M} local ({t:%z}) while the buyer {since}",
            })
    return evidence


_QUOTE_CUES = ("您说", "你说", "您讲", "你讲", "您提到", "你提到", "您反馈", "所说")
_QUOTES = "'\"‘’“”「」『』"


def _quoting(text: str, result: "MessageResult", prev_buyer: list[str]) -> bool:
    """True when the abuse flag rests only on rule terms the buyer used, quoted back."""
    if "model" in result.sources.get("abuse", ()):
        return False
    hits = [h for h in result.hits if h.label == "abuse"]
    if not hits or not prev_buyer:
        return False
    said = "".join(prev_buyer)
    cue = any(c in text for c in _QUOTE_CUES) or any(q in text for q in _QUOTES)
    return cue and all(h.text in said for h in hits)


def score_conversation(
    scorer: "Scorer",
    messages: list[dict[str, Any]],
    platform: "str | Profile | None" = None,
    *,
    config: HarassmentConfig | None = None,
) -> ConversationResult:
    """Score a conversation; see :meth:`kefuguard.Scorer.score_conversation`."""
    cfg = config or HarassmentConfig()
    msgs = _check_messages(messages)
    times: list[datetime | None] = []
    for i, m in enumerate(msgs):
        ts = m.get("ts")
        times.append(None if ts is None else parse_ts(ts, cfg.default_offset_hours, f"messages[{i}]['ts']"))
    agent_idx = [i for i, m in enumerate(msgs) if m["role"] == "agent"]
    buyer_idx = [i for i, m in enumerate(msgs) if m["role"] == "buyer"]
    results: list[Any] = [None] * len(msgs)
    for idx, role in ((agent_idx, "agent"), (buyer_idx, "buyer")):
        for i, r in zip(idx, scorer.score_batch([msgs[i]["text"] for i in idx], role=role)):
            results[i] = r
    notes: list[dict[str, Any]] = []
    abuse_th = scorer.bundle.thresholds.get("abuse", 0.5) if scorer.bundle is not None else None
    buyer_abusive: set[int] = set()
    for i in buyer_idx:
        r = results[i]
        if any(h.label == "abuse" and h.action == "flag" for h in r.hits) or (
            abuse_th is not None and r.scores.get("abuse", 0.0) >= abuse_th
        ):
            buyer_abusive.add(i)
    for i in agent_idx:
        r = results[i]
        if "abuse" not in r.labels:
            continue
        prev = [msgs[j]["text"] for j in range(max(0, i - 3), i) if msgs[j]["role"] == "buyer"]
        if _quoting(msgs[i]["text"], r, prev):
            labels = tuple(lab for lab in r.labels if lab != "abuse")
            sources = {k: v for k, v in r.sources.items() if k != "abuse"}
            sev = None
            for lab in labels:
                if severity_rank(BASE_SEVERITY[lab]) > severity_rank(sev):
                    sev = BASE_SEVERITY[lab]
            results[i] = replace(r, labels=labels, sources=sources, severity=sev)
            notes.append({"message": i, "kind": "quoting_buyer",
                          "reason": "the agent repeats the buyer's own words in quotes; not abuse"})
        elif any(j < i for j in buyer_abusive):
            j = max(j for j in buyer_abusive if j < i)
            notes.append({"message": i, "kind": "retaliation", "buyer_message": j,
                          "reason": f"the agent insults back after buyer abuse in message {j}; still abuse"})
    evidence = _harassment(msgs, times, cfg)
    harassment = bool(evidence)
    profile = platform if isinstance(platform, Profile) else load_profile(platform or "taobao")
    by_label: dict[str, list[int]] = {}
    worst: dict[str, str] = {}
    for i in agent_idx:
        r = results[i]
        for lab in r.labels:
            by_label.setdefault(lab, []).append(i)
            sev = max((h.severity for h in r.hits if h.label == lab and h.severity), key=severity_rank, default=None)
            sev = sev if severity_rank(sev) > severity_rank(BASE_SEVERITY[lab]) else BASE_SEVERITY[lab]
            if severity_rank(sev) > severity_rank(worst.get(lab)):
                worst[lab] = sev
    if harassment:
        by_label["harassment"] = sorted({i for e in evidence for i in e["messages"]})
        worst["harassment"] = BASE_SEVERITY["harassment"]
    labels = tuple(lab for lab in LABELS + ("harassment",) if lab in by_label)
    violations = []
    score = 100
    fatal = False
    for lab in labels:
        rule = profile.rule_for(lab, worst[lab])
        score -= rule.deduction
        fatal = fatal or rule.fatal
        violations.append({"label": lab, "severity": worst[lab], "messages": by_label[lab],
                           "platform_rule": rule.rule, "penalty": rule.penalty,
                           "deduction": rule.deduction, "fatal": rule.fatal})
    score = 0 if fatal else max(0, score)
    severity = max(worst.values(), key=severity_rank, default=None)
    if fatal or score < profile.violation_below:
        verdict = "violation"
    elif score < profile.pass_at or severity_rank(severity) >= severity_rank("high"):
        verdict = "review"
    else:
        verdict = "pass"
    return ConversationResult(labels, harassment, tuple(evidence), tuple(results), tuple(notes), severity,
                              verdict, score, profile.id, tuple(violations))
