"""Training, export and evaluation for kefuguard (run from the repository).

``python -m model.train``, ``python -m model.evaluate``, ``python -m model.data check``.
These modules import the runtime's :mod:`kefuguard.text` so that training and
scoring tokenise identically; the runtime never imports this package.
"""
