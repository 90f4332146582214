"""The label set of ``TAXONOMY.md`` and the severity scale.

The identifiers are fixed by the taxonomy; code, data and outputs use them as is.
"""

from __future__ import annotations

__all__ = ["LABELS", "ALL_LABELS", "SEVERITIES", "BASE_SEVERITY", "severity_rank"]

#: The 8 text labels, in TAXONOMY order. Results list labels in this order.
LABELS: tuple[str, ...] = (
    "abuse",
    "rude_tone",
    "misleading",
    "exaggeration",
    "pushy_sales",
    "review_manipulation",
    "privacy",
    "off_platform",
)

#: Text labels plus ``harassment``, which is decided at conversation level only.
ALL_LABELS: tuple[str, ...] = LABELS + ("harassment",)

#: Severity scale, lowest first.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")

#: Severity a label carries on its own (TAXONOMY "Severity"). Rule hits can raise
#: it: threats and discrimination are high, threats of harm critical.
BASE_SEVERITY: dict[str, str] = {
    "abuse": "medium",
    "rude_tone": "low",
    "misleading": "medium",
    "exaggeration": "medium",
    "pushy_sales": "low",
    "review_manipulation": "medium",
    "privacy": "high",
    "off_platform": "medium",
    "harassment": "high",
}


def severity_rank(severity: str | None) -> int:
    """Return the rank of ``severity`` (``None`` → -1) for comparisons."""
    return -1 if severity is None else SEVERITIES.index(severity)
