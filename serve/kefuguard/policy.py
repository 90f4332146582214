"""Platform profiles: labels and severities mapped to each platform's rules and penalties.

A profile is a UTF-8 text file (see ``kefuguard/profiles/*.tsv``)::

    platform<TAB>pinduoduo<TAB>拼多多
    scoring<TAB>pass_at<TAB>90<TAB>violation_below<TAB>60
    rule<TAB>abuse<TAB>high<TAB>40<TAB>yes<TAB>辱骂、恐吓消费者（严重违规）<TAB>全店商品下架7天

``rule`` rows map a label at a severity (``*`` for any) to the platform rule,
its penalty, the QA deduction and whether the item is fatal (a fatal item makes
the verdict ``violation`` whatever the score). Every label of the taxonomy,
``harassment`` included, must be covered. Files are validated on load and
errors name ``file:line``.

A user file whose ``platform`` id matches a shipped profile overrides it row by
row (same label and severity) and may change the scoring line; a new id must be
complete on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import KefuguardError
from .labels import ALL_LABELS, BASE_SEVERITY, SEVERITIES
from .rules import _lines

__all__ = ["PlatformRule", "Profile", "ProfileError", "load_profile", "available_platforms"]


class ProfileError(KefuguardError):
    """A platform profile is invalid; the message names ``file:line``."""


@dataclass(frozen=True)
class PlatformRule:
    """What one label at one severity means on a platform."""

    label: str
    severity: str  # a severity or "*"
    deduction: int
    fatal: bool
    rule: str
    penalty: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {"label": self.label, "severity": self.severity, "deduction": self.deduction,
                "fatal": self.fatal, "rule": self.rule, "penalty": self.penalty}


@dataclass(frozen=True)
class Profile:
    """A platform's rules, penalties and QA scoring template."""

    id: str
    name: str
    pass_at: int
    violation_below: int
    rules: dict[tuple[str, str], PlatformRule] = field(default_factory=dict)
    source: str = ""

    def rule_for(self, label: str, severity: str | None) -> PlatformRule:
        """Return the platform rule for ``label`` at ``severity`` (exact row, else ``*``).

        Raises
        ------
        KeyError
            The profile has no row for the label (cannot happen for a loaded profile).
        """
        if severity is not None and (label, severity) in self.rules:
            return self.rules[(label, severity)]
        if (label, "*") in self.rules:
            return self.rules[(label, "*")]
        # A loaded profile covers every label, but maybe not at this severity:
        # fall back to the closest lower severity row.
        rows = sorted((r for (lab, _), r in self.rules.items() if lab == label),
                      key=lambda r: SEVERITIES.index(r.severity))
        below = [r for r in rows if severity is None or SEVERITIES.index(r.severity) <= SEVERITIES.index(severity)]
        if below or rows:
            return (below or rows)[-1 if below else 0]
        raise KeyError(f"profile {self.id!r} has no rule for label {label!r}")


    def violations(self, result: Any) -> list[dict[str, Any]]:
        """The platform rule and penalty for each label a message result carries.

        Parameters
        ----------
        result : MessageResult
            A result from :meth:`kefuguard.Scorer.score`.

        Returns
        -------
        list[dict]
            Per flagged label: ``label``, ``severity``, ``platform_rule``,
            ``penalty``, ``deduction``, ``fatal``.

        Examples
        --------
        >>> from kefuguard import Scorer, load_profile
        >>> r = Scorer.load().score("加我微信 abc12345 私下转账便宜五十")
        >>> load_profile("pinduoduo").violations(r)[0]["platform_rule"]
        '引导站外交易/线下交易'
        """
        out = []
        for lab in result.labels:
            sev = max((h.severity for h in result.hits if h.label == lab and h.severity),
                      key=SEVERITIES.index, default=None)
            base = BASE_SEVERITY[lab]
            sev = sev if sev is not None and SEVERITIES.index(sev) > SEVERITIES.index(base) else base
            rule = self.rule_for(lab, sev)
            out.append({"label": lab, "severity": sev, "platform_rule": rule.rule, "penalty": rule.penalty,
                        "deduction": rule.deduction, "fatal": rule.fatal})
        return out


def _shipped_dir() -> Path:
    return Path(str(resources.files("kefuguard") / "profiles"))


def available_platforms() -> tuple[str, ...]:
    """Ids of the shipped platform profiles."""
    return tuple(sorted(p.stem for p in _shipped_dir().glob("*.tsv")))


def _parse(path: Path, base: Profile | None = None) -> Profile:
    pid = name = None
    pass_at = base.pass_at if base else None
    violation_below = base.violation_below if base else None
    rules: dict[tuple[str, str], PlatformRule] = dict(base.rules) if base else {}
    for lineno, line in _lines(path, ProfileError, "profile"):
        where = f"{path}:{lineno}"
        f = [x.strip() for x in line.split("\t")]
        kind = f[0]
        if kind == "platform":
            if len(f) != 3 or not f[1]:
                raise ProfileError(f"{where}: expected 'platform<TAB>id<TAB>display name'")
            if base is not None and f[1] != base.id:
                raise ProfileError(f"{where}: override for {base.id!r} names platform {f[1]!r}")
            pid, name = f[1], f[2]
        elif kind == "scoring":
            if len(f) != 5 or f[1] != "pass_at" or f[3] != "violation_below":
                raise ProfileError(f"{where}: expected 'scoring<TAB>pass_at<TAB>N<TAB>violation_below<TAB>N'")
            try:
                pass_at, violation_below = int(f[2]), int(f[4])
            except ValueError:
                raise ProfileError(f"{where}: scoring thresholds must be integers, got {f[2]!r}, {f[4]!r}") from None
            if not 0 <= violation_below <= pass_at <= 100:
                raise ProfileError(f"{where}: need 0 <= violation_below <= pass_at <= 100")
        elif kind == "rule":
            if len(f) != 7:
                raise ProfileError(f"{where}: expected 7 tab-separated fields "
                                   "(rule, label, severity, deduction, fatal, platform rule, penalty), got {len(f)}")
            _, label, sev, ded, fatal, rule, penalty = f
            if label not in ALL_LABELS:
                raise ProfileError(f"{where}: unknown label {label!r}; expected one of {ALL_LABELS}")
            if sev != "*" and sev not in SEVERITIES:
                raise ProfileError(f"{where}: severity must be '*' or one of {SEVERITIES}, got {sev!r}")
            if not ded.isdigit() or int(ded) > 100:
                raise ProfileError(f"{where}: deduction must be an integer 0-100, got {ded!r}")
            if fatal not in ("yes", "no"):
                raise ProfileError(f"{where}: fatal must be 'yes' or 'no', got {fatal!r}")
            if not rule:
                raise ProfileError(f"{where}: the platform rule name is empty")
            rules[(label, sev)] = PlatformRule(label, sev, int(ded), fatal == "yes", rule, penalty)
        else:
            raise ProfileError(f"{where}: unknown line type {kind!r} (expected platform, scoring or rule)")
    if pid is None:
        raise ProfileError(f"{path}: no 'platform' line")
    if pass_at is None or violation_below is None:
        raise ProfileError(f"{path}: no 'scoring' line")
    missing = [lab for lab in ALL_LABELS if not any(k[0] == lab for k in rules)]
    if missing:
        raise ProfileError(f"{path}: no rule rows for label(s) {missing}; every label needs one")
    return Profile(pid, name or pid, pass_at, violation_below, rules, str(path))


def _peek_id(path: Path) -> str | None:
    try:
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            f = line.split("\t")
            if f[0].strip() == "platform" and len(f) > 1:
                return f[1].strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


_CACHE: dict[str, Profile] = {}


def load_profile(platform: str | Path) -> Profile:
    """Load a shipped profile by id, or a profile file (overriding a shipped one with the same id).

    Parameters
    ----------
    platform : str or Path
        A shipped id (``taobao``, ``tmall``, ``pinduoduo``, ``jd``, ``douyin``,
        ``kuaishou``, ``xiaohongshu``) or the path of a profile file.

    Returns
    -------
    Profile

    Raises
    ------
    ValueError
        ``platform`` is neither a shipped id nor an existing file.
    ProfileError
        The file is invalid (the message names ``file:line``).
    """
    p = Path(str(platform))
    if isinstance(platform, str) and platform in available_platforms():
        if platform not in _CACHE:
            _CACHE[platform] = _parse(_shipped_dir() / f"{platform}.tsv")
        return _CACHE[platform]
    if not p.is_file():
        raise ValueError(
            f"platform must be one of {available_platforms()} or a profile file, got {str(platform)!r}"
        )
    pid = _peek_id(p)
    base = load_profile(pid) if pid in available_platforms() else None
    prof = _parse(p, base)
    return replace(prof, source=str(p))
