"""Training-time augmentation: the spellings agents use to dodge filters.

For each training positive of a label in :data:`TARGETS`, variants are made with
Traditional characters, full-width and upper-case letters, spaces and symbols
inserted inside trigger words, and homophone or pinyin substitutions for
contact and abuse words. A variant is kept only when its *normalised* form
differs from the original's: the runtime normaliser already undoes width,
case, Traditional characters, separators and the canonical homophones
(威信, vx, 煞笔, …), so most variants add nothing, and keeping them would only
re-weight the corpus. What survives are the substitutions the normaliser does
not know, which is exactly what the model has to learn.
"""

from __future__ import annotations

import random
from dataclasses import replace

from kefuguard.text import normalize

from .data import Example

__all__ = ["TARGETS", "augment"]

#: Labels whose positives are augmented, with the words to disguise.
TARGETS: dict[str, tuple[str, ...]] = {
    "off_platform": ("微信", "加", "QQ", "电话", "私下", "转账", "联系"),
    "abuse": ("傻逼", "垃圾", "神经病", "滚", "脑残", "废物", "你妈", "去死", "白痴"),
    "review_manipulation": ("好评", "返现", "差评", "五星"),
    "exaggeration": ("最", "第一", "顶级", "100%"),
}
# Substitutions the normaliser does NOT canonicalise (those it does are pointless here).
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "微信": ("徽❤", "V芯", "wei信", "威x", "薇x"),
    "加": ("+", "伽", "嘉"),
    "QQ": ("球球", "Q号"),
    "电话": ("电hua", "dh", "📞"),
    "私下": ("私xia", "si下"),
    "转账": ("转zhang", "zz"),
    "联系": ("lian系", "联xi"),
    "傻逼": ("傻13", "煞13", "sha逼", "傻bi"),
    "垃圾": ("辣鸡", "lj", "拉圾"),
    "神经病": ("神经饼", "sjb", "神金"),
    "滚": ("gun", "衮"),
    "脑残": ("nc", "脑c"),
    "废物": ("fw", "废wu"),
    "你妈": ("你ma", "尼麻"),
    "去死": ("qs", "去si"),
    "白痴": ("白吃", "bc"),
    "好评": ("hp", "好p", "好坪"),
    "返现": ("返xian", "fx", "返💰"),
    "差评": ("cp", "差p"),
    "五星": ("5⭐", "⭐⭐⭐⭐⭐", "五☆"),
    "最": ("蕞", "醉"),
    "第一": ("di一", "No1"),
    "顶级": ("顶jí", "dj"),
    "100%": ("百fen百", "💯"),
}


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


_S2T = None


def _traditional(text: str) -> str:
    global _S2T
    if _S2T is None:  # building a converter loads its dictionaries: once, not per message
        import opencc

        _S2T = opencc.OpenCC("s2t")
    return _S2T.convert(text)


def _variants(text: str, words: tuple[str, ...], rng: random.Random) -> list[str]:
    out = [_traditional(text), _fullwidth(text.upper())]
    for w in words:
        if w in text:
            out.append(text.replace(w, rng.choice(" .*-·").join(w), 1))
            for sub in HOMOPHONES.get(w, ()):
                out.append(text.replace(w, sub, 1))
    return out


def augment(train: list[Example], *, seed: int = 0, per_example: int = 2) -> tuple[list[Example], dict[str, int]]:
    """Return augmented copies of ``train`` positives and counts of what was made.

    Parameters
    ----------
    train : list[Example]
        Training examples (never dev or test).
    seed : int
        Seed for the choice of variants.
    per_example : int
        At most this many surviving variants per example.

    Returns
    -------
    added : list[Example]
        New examples (same labels and group as their source).
    stats : dict
        ``generated``, ``redundant`` (identical after normalisation) and ``kept``.
    """
    rng = random.Random(seed)
    added: list[Example] = []
    stats = {"generated": 0, "redundant": 0, "kept": 0}
    for ex in train:
        words = tuple(w for lab in ex.labels for w in TARGETS.get(lab, ()))
        if not words:
            continue
        base = normalize(ex.text).compact
        fresh = []
        for v in _variants(ex.text, words, rng):
            stats["generated"] += 1
            if normalize(v).compact == base:
                stats["redundant"] += 1
            elif v not in fresh:
                fresh.append(v)
        rng.shuffle(fresh)
        for v in fresh[:per_example]:
            added.append(replace(ex, text=v, id=f"{ex.id}+aug", subset="augmented", where=f"{ex.where} (augmented)"))
        stats["kept"] += min(per_example, len(fresh))
    return added, stats
