"""The scoring API: :class:`Scorer` and its :class:`MessageResult`.

Combination policy (``mode="hybrid"``), per label:

1. a rule hit whose action is ``flag`` decides the label alone (explicit
   profanity, contact details, ID and bank card numbers, requests for secrets,
   好评返现 phrases, Advertising-Law absolute terms, …);
2. the model flags the label when its probability reaches the label's threshold
   (stored in the bundle, chosen on the dev split);
3. a rule hit whose action is ``hint`` (an ambiguous term such as 最好, 垃圾, 微信,
   a bare phone number, or a flag term in quotes) flags the label only when the
   model's probability also reaches the lower *hint threshold*.

``mode="rules"`` applies step 1 only (the keyword baseline); ``mode="model"``
step 2 only. Buyer messages (``role="buyer"``) are scored for context but never
carry labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle import Bundle
from .labels import BASE_SEVERITY, LABELS, severity_rank
from .rules import RuleHit, RuleSet
from .text import Normalized, normalize

if TYPE_CHECKING:
    from .conversation import ConversationResult, HarassmentConfig
    from .policy import Profile

__all__ = ["Scorer", "MessageResult", "MODES", "ROLES"]

MODES = ("hybrid", "model", "rules")
ROLES = ("agent", "buyer")
_BATCH = 512  # messages normalised, featurised and run together


@dataclass(frozen=True)
class MessageResult:
    """The verdict on one message.

    Attributes
    ----------
    labels : tuple[str, ...]
        Flagged labels, in TAXONOMY order; empty for acceptable messages and for
        buyer messages.
    scores : dict[str, float]
        Model probability per text label; empty in ``rules`` mode.
    hits : tuple[RuleHit, ...]
        Rule hits with spans in the original text; empty in ``model`` mode.
    severity : str or None
        ``"low"``, ``"medium"``, ``"high"`` or ``"critical"``; ``None`` when not flagged.
    role : str
        ``"agent"`` or ``"buyer"``.
    sources : dict[str, tuple[str, ...]]
        Per flagged label, which layers decided it (``"rule"``, ``"model"``).
    evidence : dict[str, tuple[dict, ...]]
        Per flagged label, why: rule hits (``source="rule"``, ``rule_id``, span)
        and, for model decisions, the top contributing n-grams
        (``source="model"``, ``feature``, ``weight``, span). Spans index the
        original text.
    """

    labels: tuple[str, ...]
    scores: dict[str, float]
    hits: tuple[RuleHit, ...]
    severity: str | None
    role: str = "agent"
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    evidence: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """True when at least one label was flagged."""
        return bool(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of the result.

        Returns
        -------
        dict
            Keys ``labels``, ``flagged``, ``severity``, ``scores``, ``hits``,
            ``sources`` (which of ``rule``/``model`` decided each label), ``role``.
        """
        return {
            "labels": list(self.labels),
            "flagged": self.flagged,
            "severity": self.severity,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "hits": [h.to_dict() for h in self.hits],
            "sources": {k: list(v) for k, v in self.sources.items()},
            "evidence": {k: list(v) for k, v in self.evidence.items()},
            "role": self.role,
        }


def _check_text(text: object, where: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{where} must be str, got {type(text).__name__}: {text!r:.60}")
    return text


class Scorer:
    """Scores customer-service agent messages with rules, a model, or both.

    Create one with :meth:`Scorer.load`. A ``Scorer`` is immutable after loading;
    one instance may be shared by several threads (onnxruntime sessions allow
    concurrent ``run`` calls, and the rule matcher only reads its automaton).

    Examples
    --------
    >>> from kefuguard import Scorer
    >>> scorer = Scorer.load()
    >>> scorer.score("加我微信 abc12345 私下转账便宜五十").labels
    ('off_platform',)
    """

    def __init__(self, bundle: Bundle | None, rules: RuleSet | None, mode: str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.bundle = bundle
        self.rules = rules
        self.mode = mode
        # thresholds in the bundle's label order, for the clean-message shortcut
        self._th_array = (
            np.array([bundle.thresholds[lab] for lab in bundle.labels], dtype=np.float64) if bundle is not None else None
        )

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        mode: str = "hybrid",
        rules: str | Path | None = None,
    ) -> "Scorer":
        """Load a bundle and the rules.

        Parameters
        ----------
        path : str or Path, optional
            A bundle directory (``model.onnx``, ``vocab.json``, ``bundle.json``).
            Defaults to the bundle shipped inside the package.
        mode : {"hybrid", "model", "rules"}, default "hybrid"
            Which layers decide labels (see the module docstring).
        rules : str or Path, optional
            A directory of rule files; defaults to the shipped rules.

        Returns
        -------
        Scorer

        Raises
        ------
        ValueError
            ``mode`` is not one of the three modes.
        BundleError, RulesError
            The bundle or a rule file is invalid.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        bundle = Bundle.load(path) if mode != "rules" else None
        ruleset = RuleSet.load(rules) if mode != "model" else None
        return cls(bundle, ruleset, mode)

    @property
    def labels(self) -> tuple[str, ...]:
        """The text labels this scorer can flag, in TAXONOMY order."""
        return LABELS

    def score(self, text: str, *, role: str = "agent") -> MessageResult:
        """Score one message.

        Parameters
        ----------
        text : str
            The message. Any string is accepted; empty or whitespace-only text has
            no labels.
        role : {"agent", "buyer"}, default "agent"
            Who wrote it. Buyer messages never carry labels.

        Returns
        -------
        MessageResult

        Raises
        ------
        TypeError
            ``text`` is not a ``str``.
        ValueError
            ``role`` is not ``"agent"`` or ``"buyer"``.
        """
        return self._score([_check_text(text)], role)[0]

    def score_batch(self, texts: Iterable[str], *, role: str = "agent") -> list[MessageResult]:
        """Score many messages at once (the fast path).

        Parameters
        ----------
        texts : iterable of str
            Messages; a single ``str`` is refused.
        role : {"agent", "buyer"}, default "agent"

        Returns
        -------
        list[MessageResult]
            One result per message, in input order; identical to calling
            :meth:`score` on each.

        Raises
        ------
        TypeError
            ``texts`` is a string or bytes, or an element is not a ``str``
            (the message gives its index).
        """
        if isinstance(texts, (str, bytes, bytearray)):
            raise TypeError(
                f"score_batch expects an iterable of str, got a single {type(texts).__name__}; "
                "use score() for one message"
            )
        try:
            items = list(texts)
        except TypeError:
            raise TypeError(f"score_batch expects an iterable of str, got {type(texts).__name__}") from None
        for i, t in enumerate(items):
            _check_text(t, f"texts[{i}]")
        return self._score(items, role)

    def score_conversation(
        self,
        messages: list[dict[str, Any]],
        platform: "str | Path | Profile | None" = None,
        *,
        config: "HarassmentConfig | None" = None,
    ) -> "ConversationResult":
        """Score a conversation and give a QA verdict under a platform profile.

        Parameters
        ----------
        messages : list of dict
            ``{"role": "agent"|"buyer", "text": str, "ts": ISO-8601 with offset or
            epoch seconds}`` in order; ``ts`` is optional (messages without it are
            not used for timing).
        platform : str or Path, optional
            A shipped profile id (``taobao``, ``tmall``, ``pinduoduo``, ``jd``,
            ``douyin``, ``kuaishou``, ``xiaohongshu``), a profile file, or a loaded
            :class:`~kefuguard.policy.Profile`; ``taobao`` when omitted.
        config : HarassmentConfig, optional
            Burst and night-hour thresholds (defaults: more than 5 agent messages
            in 10 minutes; 22:00-08:00 after 30 quiet minutes).

        Returns
        -------
        ConversationResult

        Raises
        ------
        TypeError, ValueError
            A message is not a dict, has a bad role, non-str text or an
            unparseable ``ts`` (the message names its index).

        Examples
        --------
        >>> r = Scorer.load().score_conversation([
        ...     {"role": "buyer", "text": "你们发货也太慢了吧"},
        ...     {"role": "agent", "text": "慢就别买啊，爱买不买"}], platform="pinduoduo")
        >>> r.verdict, r.labels
        ('review', ('rude_tone',))
        """
        from .conversation import score_conversation

        return score_conversation(self, messages, platform, config=config)

    def _score(self, texts: list[str], role: str) -> list[MessageResult]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if len(texts) <= _BATCH:
            return self._score_chunk(texts, role)
        # Bounded chunks keep peak memory flat for any batch size; results do not
        # depend on chunking (see Bundle._run).
        out: list[MessageResult] = []
        for i in range(0, len(texts), _BATCH):
            out += self._score_chunk(texts[i : i + _BATCH], role)
        return out

    def _score_chunk(self, texts: list[str], role: str) -> list[MessageResult]:
        norms = [normalize(t) for t in texts]
        if self.bundle is not None:
            probs, windows = self.bundle.predict_explainable(norms)
            labels = self.bundle.labels
            all_scores = [dict(zip(labels, row.tolist())) for row in probs]
            # which messages the model flags at all, decided for the whole batch at once
            model_any = (probs >= self._th_array).any(axis=1).tolist()
        else:
            windows, all_scores = [[] for _ in norms], [{} for _ in norms]
            model_any = [False] * len(norms)
        match = self.rules.match if self.rules is not None else None
        return [
            self._decide(norm, scores, tuple(match(norm)) if match else (), role, win, any_model)
            for norm, scores, win, any_model in zip(norms, all_scores, windows, model_any)
        ]

    def _decide(
        self,
        norm: Normalized,
        scores: dict[str, float],
        hits: tuple[RuleHit, ...],
        role: str,
        windows: list,
        model_any: bool,
    ) -> MessageResult:
        if role == "buyer" or not norm.compact:
            return MessageResult((), scores, hits, None, role, {})
        if not hits and not model_any:
            return MessageResult((), scores, hits, None, role, {})  # the common case: clean
        sources: dict[str, list[str]] = {}
        if self.bundle is not None:
            th = self.bundle.thresholds
            for lab, p in scores.items():
                if p >= th[lab]:
                    sources.setdefault(lab, []).append("model")
        if self.mode != "model":
            hint_th = self.bundle.hint_thresholds if self.bundle is not None else None
            for h in hits:
                if h.action == "flag":
                    ok = True
                else:
                    ok = hint_th is not None and scores.get(h.label, 0.0) >= hint_th[h.label]
                if ok and "rule" not in sources.setdefault(h.label, []):
                    sources[h.label].append("rule")
        labels = tuple(lab for lab in LABELS if lab in sources)
        severity = None
        for lab in labels:
            if severity_rank(BASE_SEVERITY[lab]) > severity_rank(severity):
                severity = BASE_SEVERITY[lab]
        for h in hits:
            if h.severity and h.label in sources and severity_rank(h.severity) > severity_rank(severity):
                severity = h.severity
        evidence: dict[str, list[dict[str, Any]]] = {}
        for h in hits:
            if h.label in sources and (h.action == "flag" or "rule" in sources[h.label]):
                evidence.setdefault(h.label, []).append(
                    {"source": "rule", "rule_id": h.rule_id, "start": h.start, "end": h.end, "text": h.text}
                )
        model_labels = [lab for lab in labels if "model" in sources[lab]]
        if model_labels and self.bundle is not None:
            for lab, feats in self.bundle.explain(norm, model_labels, windows).items():
                evidence.setdefault(lab, []).extend({"source": "model", **f} for f in feats)
        return MessageResult(labels, scores, hits, severity, role, {k: tuple(v) for k, v in sources.items()},
                             {k: tuple(v) for k, v in evidence.items()})
