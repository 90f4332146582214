"""The rule layer: lexicons and patterns as data files, matched on normalised text.

Rule files live in ``kefuguard/rules/`` (or any directory given to
:meth:`RuleSet.load`):

``*.tsv`` lexicons
    ``term<TAB>label<TAB>action<TAB>severity<TAB>note``. ``action`` is ``flag``
    (the hit decides the label alone), ``hint`` (the hit needs the model's support
    in hybrid mode) or ``allow`` (an allow-list entry: it produces no hit and,
    being longer, beats the terms inside it, e.g. 滚筒 vs 滚). ``severity`` is
    ``-`` or a severity the hit raises the message to.
``patterns.re``
    ``id<TAB>label<TAB>action<TAB>severity<TAB>check<TAB>regex``; ``check`` is
    ``-``, ``luhn`` (bank cards) or ``id_card`` (Chinese resident ID checksum and
    birth date), applied to the named group ``v`` or to the whole match.
``negation.cues``
    ``before|after<TAB>cue<TAB>note``: a lexicon ``flag`` hit (except ``abuse``)
    with a cue just before or after it in the same clause is demoted to a hint
    ("我们没有好评返现", "好评返现是违规的").

Lines starting with ``#`` and blank lines are ignored. Every file is validated
on load and errors name ``file:line``. Terms are normalised exactly like input
text, so a lexicon written in Traditional or full-width characters still
matches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import RulesError
from .labels import LABELS, SEVERITIES
from .text import Normalized, normalize

__all__ = ["RuleHit", "RuleSet", "default_rules_dir"]

_ACTIONS = ("flag", "hint", "allow")
_CHECKS = ("-", "luhn", "id_card")
# Quote marks: a term inside quotes is being discussed, not used ("不能说'最好'").
_OPEN_QUOTES = "‘“「『《"
_CLOSE_QUOTES = "’”」』》"
_BOTH_QUOTES = "'\""  # ASCII quotes open and close: inside when an odd number precede
_CLAUSE_END = frozenset("，。！？；,!?;…")
_CUE_BEFORE = 8
_CUE_AFTER = 10
# Labels whose flag terms are never softened by negation cues: "不是傻逼" is still abuse.
_NO_NEGATION = frozenset({"abuse"})


@dataclass(frozen=True)
class RuleHit:
    """One rule match, with its span in the caller's original text.

    Attributes
    ----------
    label : str
        Taxonomy label the rule supports.
    rule_id : str
        Stable rule identifier: ``<lexicon>:<term>`` or a pattern id.
    start, end : int
        Half-open character span in the ORIGINAL text.
    text : str
        ``original[start:end]``.
    action : str
        ``"flag"`` (decides alone) or ``"hint"`` (needs model support in hybrid
        mode; quoted terms are demoted to hints).
    severity : str or None
        Severity this hit raises the message to, if any.
    """

    label: str
    rule_id: str
    start: int
    end: int
    text: str
    action: str
    severity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of the hit."""
        return {
            "label": self.label,
            "rule_id": self.rule_id,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "action": self.action,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class _Term:
    rule_id: str
    label: str
    action: str
    severity: str | None
    length: int
    ascii_word: bool  # ASCII terms must not match inside longer ASCII words (sb in usb)


@dataclass(frozen=True)
class _Pattern:
    rule_id: str
    label: str
    action: str
    severity: str | None
    check: str
    regex: re.Pattern[str]


def default_rules_dir() -> Path:
    """Return the directory of the rule files shipped inside the package."""
    return Path(str(resources.files("kefuguard") / "rules"))


def _fields(path: Path, lineno: int, line: str, n: int) -> list[str]:
    parts = line.split("\t")
    if len(parts) < n:
        raise RulesError(
            f"{path}:{lineno}: expected {n} tab-separated fields, got {len(parts)}: {line!r}"
        )
    return parts


def _check_common(path: Path, lineno: int, label: str, action: str, severity: str) -> str | None:
    if action not in _ACTIONS:
        raise RulesError(f"{path}:{lineno}: action must be one of {_ACTIONS}, got {action!r}")
    if label not in LABELS and not (action == "allow" and label == "*"):
        raise RulesError(f"{path}:{lineno}: unknown label {label!r}; expected one of {LABELS}")
    if severity != "-" and severity not in SEVERITIES:
        raise RulesError(f"{path}:{lineno}: severity must be '-' or one of {SEVERITIES}, got {severity!r}")
    return None if severity == "-" else severity


def _lines(path: Path, error: type[Exception] = RulesError, what: str = "rule file"):
    """Yield ``(lineno, line)`` of a hand-edited data file, skipping blanks and ``#`` comments.

    Shared by rule files and platform profiles; ``error`` is raised with
    ``file:line`` for an unreadable file or undecodable line.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    for lineno, bline in enumerate(raw.split(b"\n"), 1):
        try:
            line = bline.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise error(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from exc
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if line.strip() and not line.lstrip().startswith("#"):
            yield lineno, line


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def _id_card(value: str) -> bool:
    """Validate an 18-character resident ID: checksum (GB 11643) and birth date."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != value[17].lower():
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


_CHECK_FUNCS = {"luhn": _luhn, "id_card": _id_card}


class RuleSet:
    """Compiled lexicons and patterns.

    Build one with :meth:`load`; it is immutable afterwards and safe to share
    between threads.
    """

    def __init__(
        self,
        terms: dict[str, _Term],
        patterns: list[_Pattern],
        digest: str,
        source: str,
        cues: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    ):
        import ahocorasick  # imported here: only needed once rules are built

        self._patterns = patterns
        self._cues_before, self._cues_after = cues
        # One scan that fails on most messages saves running every pattern on them.
        try:
            self._any_pattern: re.Pattern[str] | None = (
                re.compile("|".join(f"(?:{re.sub(r'[(][?]P<[^>]+>', '(?:', p.regex.pattern)})" for p in patterns))
                if patterns
                else None
            )
        except re.error:  # e.g. repeated group names across patterns: scan one by one
            self._any_pattern = None
        self.digest = digest
        self.source = source
        self.n_terms = len(terms)
        self._automaton = ahocorasick.Automaton()
        for key, term in terms.items():
            self._automaton.add_word(key, term)
        if terms:
            self._automaton.make_automaton()
        self._empty = not terms

    @classmethod
    def load(cls, directory: str | Path | None = None) -> "RuleSet":
        """Load and validate every rule file in ``directory``.

        Parameters
        ----------
        directory : str or Path, optional
            A directory of ``*.tsv`` lexicons and an optional ``patterns.re``.
            Defaults to the rules shipped with the package.

        Returns
        -------
        RuleSet

        Raises
        ------
        RulesError
            A file is unreadable or a line is invalid; the message names
            ``file:line``.
        """
        d = Path(directory) if directory is not None else default_rules_dir()
        if not d.is_dir():
            raise RulesError(f"{d}: rules directory not found")
        sha = hashlib.sha256()
        terms: dict[str, _Term] = {}
        where: dict[str, str] = {}
        for path in sorted(d.glob("*.tsv")):
            sha.update(path.name.encode() + b"\0" + path.read_bytes())
            for lineno, line in _lines(path):
                term_raw, label, action, severity, *_ = (f.strip() for f in _fields(path, lineno, line, 4))
                sev = _check_common(path, lineno, label, action, severity)
                key = normalize(term_raw).compact
                if not key:
                    raise RulesError(f"{path}:{lineno}: term {term_raw!r} is empty after normalisation")
                if key in terms:
                    raise RulesError(
                        f"{path}:{lineno}: term {term_raw!r} duplicates {where[key]} (same after normalisation)"
                    )
                where[key] = f"{path.name}:{lineno}"
                terms[key] = _Term(
                    rule_id=f"{path.stem}:{key}",
                    label=label,
                    action=action,
                    severity=sev,
                    length=len(key),
                    ascii_word=key.isascii() and key.isalnum(),
                )
        patterns: list[_Pattern] = []
        pfile = d / "patterns.re"
        if pfile.exists():
            sha.update(b"patterns.re\0" + pfile.read_bytes())
            seen: set[str] = set()
            for lineno, line in _lines(pfile):
                rid, label, action, severity, check, regex = _fields(pfile, lineno, line, 6)[:6]
                sev = _check_common(pfile, lineno, label, action, severity)
                if action == "allow":
                    raise RulesError(f"{pfile}:{lineno}: patterns cannot be 'allow'; use a lexicon entry")
                if check not in _CHECKS:
                    raise RulesError(f"{pfile}:{lineno}: check must be one of {_CHECKS}, got {check!r}")
                if rid in seen:
                    raise RulesError(f"{pfile}:{lineno}: duplicate pattern id {rid!r}")
                seen.add(rid)
                try:
                    rx = re.compile(regex)
                except re.error as exc:
                    raise RulesError(f"{pfile}:{lineno}: invalid regex {regex!r}: {exc}") from exc
                patterns.append(_Pattern(rid, label, action, sev, check, rx))
        before: list[str] = []
        after: list[str] = []
        cfile = d / "negation.cues"
        if cfile.exists():
            sha.update(b"negation.cues\0" + cfile.read_bytes())
            for lineno, line in _lines(cfile):
                position, cue = (f.strip() for f in _fields(cfile, lineno, line, 2)[:2])
                if position not in ("before", "after"):
                    raise RulesError(f"{cfile}:{lineno}: position must be 'before' or 'after', got {position!r}")
                key = normalize(cue).compact
                if not key:
                    raise RulesError(f"{cfile}:{lineno}: cue {cue!r} is empty after normalisation")
                (before if position == "before" else after).append(key)
        if not terms and not patterns:
            raise RulesError(f"{d}: no rule files (*.tsv, patterns.re) found")
        return cls(terms, patterns, sha.hexdigest(), str(d), (tuple(before), tuple(after)))

    def match(self, norm: Normalized) -> list[RuleHit]:
        """Return the rule hits in a normalised message, ordered by position.

        Lexicon matches are resolved longest-first: an accepted match blocks every
        shorter match overlapping it, so allow-list entries (滚筒, 去死皮) suppress
        the terms inside them. A term enclosed in quote marks is demoted to a hint.

        Parameters
        ----------
        norm : Normalized
            Output of :func:`kefuguard.text.normalize`.

        Returns
        -------
        list[RuleHit]
        """
        s = norm.compact
        if not s:
            return []
        found: list[tuple[int, int, _Term]] = []
        if not self._empty:
            for end_idx, term in self._automaton.iter(s):
                start = end_idx - term.length + 1
                if term.ascii_word and (
                    (start > 0 and s[start - 1].isascii() and s[start - 1].isalnum())
                    or (end_idx + 1 < len(s) and s[end_idx + 1].isascii() and s[end_idx + 1].isalnum())
                ):
                    continue
                found.append((start, end_idx + 1, term))
        patterns = self._patterns if self._any_pattern is None or self._any_pattern.search(s) else ()
        if not found and not patterns:
            return []  # the common case: nothing to resolve
        # Longest first, then leftmost: greedy selection of non-overlapping matches.
        found.sort(key=lambda m: (m[0] - m[1], m[0]))
        taken = bytearray(len(s))
        hits: list[RuleHit] = []
        for start, end, term in found:
            if any(taken[start:end]):
                continue
            taken[start:end] = b"\1" * (end - start)
            if term.action == "allow":
                continue
            action = term.action
            if action == "flag" and (
                _quoted(s, start, end) or (term.label not in _NO_NEGATION and self._negated(s, start, end))
            ):
                action = "hint"
            hits.append(self._hit(norm, term.label, term.rule_id, start, end, action, term.severity))
        for p in patterns:
            for m in p.regex.finditer(s):
                if m.end() == m.start():
                    continue
                if p.check != "-":
                    value = m.group("v") if "v" in p.regex.groupindex else m.group(0)
                    if not _CHECK_FUNCS[p.check](value):
                        continue
                hits.append(self._hit(norm, p.label, p.rule_id, m.start(), m.end(), p.action, p.severity))
        if len(hits) > 1:
            # A hint inside a flag of the same label adds nothing (phone_cn inside
            # phone_with_contact); keep the explanation short.
            flags = [h for h in hits if h.action == "flag"]
            hits = [
                h for h in hits
                if h.action == "flag"
                or not any(f.label == h.label and f.start <= h.start and h.end <= f.end for f in flags)
            ]
        hits.sort(key=lambda h: (h.start, h.end, h.rule_id))
        return hits

    def _negated(self, s: str, start: int, end: int) -> bool:
        """True when a negation cue sits just before or after ``s[start:end]`` in its clause."""
        a = start
        while a > 0 and start - a < _CUE_BEFORE and s[a - 1] not in _CLAUSE_END:
            a -= 1
        before = s[a:start]
        b = end
        while b < len(s) and b - end < _CUE_AFTER and s[b] not in _CLAUSE_END:
            b += 1
        after = s[end:b]
        return any(c in before for c in self._cues_before) or any(c in after for c in self._cues_after)

    @staticmethod
    def _hit(norm: Normalized, label: str, rule_id: str, start: int, end: int, action: str,
             severity: str | None) -> RuleHit:
        o_start, o_end = norm.span(start, end)
        return RuleHit(label, rule_id, o_start, o_end, norm.original[o_start:o_end], action, severity)


def _quoted(s: str, start: int, end: int) -> bool:
    """True when ``s[start:end]`` sits inside a pair of quote marks.

    Typographic quotes: the nearest quote mark before the term opens and a
    closing one follows. ASCII quotes: an odd number of them precede the term
    and one follows.
    """
    last_open = max(s.rfind(q, 0, start) for q in _OPEN_QUOTES)
    last_close = max(s.rfind(q, 0, start) for q in _CLOSE_QUOTES)
    if last_open > last_close and any(q in s[end:] for q in _CLOSE_QUOTES):
        return True
    for q in _BOTH_QUOTES:
        if s.count(q, 0, start) % 2 == 1 and q in s[end:]:
            return True
    return False
