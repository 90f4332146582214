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


def __getattr__(name: str):
    # Conversation and policy types load on first use: most callers score single messages.
    if name in ("ConversationResult", "HarassmentConfig"):
        from . import conversation

        return getattr(conversation, name)
    if name in ("Profile", "load_profile", "ProfileError"):
        from . import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'kefuguard' has no attribute {name!r}")


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
    "ConversationResult",
    "HarassmentConfig",
    "Profile",
    "ProfileError",
    "load_profile",
]
