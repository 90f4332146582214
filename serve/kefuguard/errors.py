"""Exceptions raised by kefuguard itself.

Caller mistakes (wrong argument types or values) raise the built-in
:class:`TypeError` / :class:`ValueError`; failures of kefuguard's own files and
data raise subclasses of :class:`KefuguardError`.
"""

from __future__ import annotations

__all__ = ["KefuguardError", "BundleError", "RulesError", "DataError"]


class KefuguardError(Exception):
    """Base class of every error kefuguard raises about its own files and data."""


class BundleError(KefuguardError):
    """A model bundle is missing, incomplete, corrupt or incompatible."""


class RulesError(KefuguardError):
    """A rule file is invalid; the message names ``file:line``."""


class DataError(KefuguardError):
    """A labeled data file is invalid; the message names ``file:line``."""
