"""kefuguard: flag misconduct in Chinese e-commerce customer-service messages.

>>> from kefuguard import Scorer
>>> scorer = Scorer.load()
>>> scorer.score("亲，已经帮您催促快递了哦，请耐心等待").flagged
False

Importing the package is cheap: onnxruntime, OpenCC, rjieba and the rule
matcher are loaded by :meth:`Scorer.load` and on first use.
"""

from ._version import __version__
from .errors import BundleError, DataError, KefuguardError, RulesError
from .labels import ALL_LABELS, LABELS
from .rules import RuleHit
from .scorer import MessageResult, Scorer

__all__ = [
    "__version__",
    "Scorer",
    "MessageResult",
    "RuleHit",
    "LABELS",
    "ALL_LABELS",
    "KefuguardError",
    "BundleError",
    "RulesError",
    "DataError",
]
