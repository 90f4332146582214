"""Text normalisation and tokenisation shared by the runtime and by training.

Both sides of the model (``model/`` at training time, :mod:`kefuguard.scorer` at
scoring time) call :func:`model_tokens` so that a message is turned into exactly
the same features in both places. The rule layer matches on the *compact* view
produced by :func:`normalize`, and every character of that view remembers which
character of the original text it came from, so spans can always be reported in
the caller's own string.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "PREPROCESSING_ID",
    "Normalized",
    "normalize",
    "model_tokens",
]

#: Identifies the normalisation + feature recipe. A bundle records the id it was
#: trained with; the scorer refuses a bundle whose id differs, because the same
#: vocabulary would silently mean different features.
PREPROCESSING_ID = "kg-text-5"

# Characters that render as nothing (or as a joiner) and are used to split
# words so that keyword filters miss them: zero-width spaces and joiners,
# direction marks, word joiner, BOM, soft hyphen, Mongolian vowel separator and
# variation selectors; also U+FFFD, which stands for bytes a decoder could not read.
_INVISIBLE = frozenset(
    [0x00AD, 0x034F, 0xFFFD, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0]
    + list(range(0x200B, 0x2010))
    + list(range(0x202A, 0x202F))
    + list(range(0x2060, 0x2070))
    + list(range(0xFE00, 0xFE10))
)

# Characters agents put between the characters of a word to break keyword
# matching (加.微.信, 傻 逼, 加-V). They are dropped from the compact view.
# Sentence punctuation (，。！？) and quotes are kept: they mark real boundaries
# and quoting, which separates "您说的'垃圾'" from an insult.
_SEPARATORS = frozenset(" \t\r\n\f\v.·•・-_—–~*/\\|+^`=、丶")

# Digit forms NFKC leaves alone (negative circled and dingbat digits).
_DIGIT_FORMS = {
    **{chr(0x24FF): "0"},
    **{chr(0x2776 + i): str(i + 1) for i in range(9)},  # ❶..❾
    **{chr(0x2780 + i): str(i + 1) for i in range(9)},  # ➀..➈
    **{chr(0x278A + i): str(i + 1) for i in range(9)},  # ➊..➒
    **{chr(0x24EB + i): str(i + 11) for i in range(10)},  # ⓫..⓴
}


def _opencc():
    """Return the shared Traditional→Simplified converter, created on first use.

    Importing OpenCC's dictionaries costs a few milliseconds; doing it lazily keeps
    ``import kefuguard`` cheap.
    """
    global _CC
    if _CC is None:
        import opencc

        _CC = opencc.OpenCC("t2s")
    return _CC


_CC = None


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    """Fold one character: NFKC, extra digit forms, lower case, drop invisibles."""
    cp = ord(ch)
    if cp in _INVISIBLE or 0xD800 <= cp <= 0xDFFF:
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Co", "Cn") and not ch.isspace():
        return ""
    if ch in _DIGIT_FORMS:
        return _DIGIT_FORMS[ch]
    folded = unicodedata.normalize("NFKC", ch).lower()
    if any(c.isspace() for c in folded):
        return " "
    if folded != ch and not folded.isascii():
        # Traditional → Simplified ran before this fold, but a compatibility
        # character can fold to a Traditional one (🈡 → 終, 豈 → 豈): convert it
        # too, or normalising twice would not give the same text.
        folded = "".join(map(_t2s_char, folded))
    return folded


class _Fold1(dict):
    """``str.translate`` table: each character to its one-character fold.

    Characters whose fold is not exactly one character (invisibles, which fold to
    nothing; compatibility characters that expand, like ㈠ → (一)) map to NUL,
    which sends the message down the character-by-character path. Entries are
    computed on first sight; the table stops growing at a bound so that hostile
    input cannot make it large.
    """

    def __missing__(self, cp: int) -> str:
        f = _fold_char(chr(cp))
        value = f if len(f) == 1 else "\x00"
        if len(self) < 200_000:
            self[cp] = value
        return value


_FOLD1 = _Fold1()
_SEP_RX = re.compile("[" + re.escape("".join(sorted(_SEPARATORS))) + "]")


def _t2s(text: str) -> str:
    """Traditional → Simplified, keeping one output character per input character.

    OpenCC converts phrases, which can (rarely) change the length of the string;
    when it does, fall back to character-by-character conversion so that every
    output character still has exactly one source character.
    """
    cc = _opencc()
    try:
        out = cc.convert(text)
    except UnicodeEncodeError:  # lone surrogates: OpenCC needs valid UTF-8
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
        out = cc.convert(text)
    if len(out) == len(text):
        return out
    return "".join(_t2s_char(c) for c in text)


@lru_cache(maxsize=16384)
def _t2s_char(ch: str) -> str:
    out = _opencc().convert(ch)
    return out if len(out) == 1 else ch


@dataclass(frozen=True)
class Normalized:
    """A normalised message and the way back to the original text.

    Attributes
    ----------
    original : str
        The text as given by the caller.
    text : str
        Normalised text: Simplified, NFKC, lower case, invisibles removed,
        whitespace runs collapsed to one space.
    compact : str
        ``text`` without whitespace and obfuscation separators, with known
        obfuscations canonicalised (威信/vx → 微信, 煞笔/sb → 傻逼, 一三八… → 138…,
        傻傻傻逼 → 傻逼);
        rules and the model read this view.
    compact_map : Sequence[int]
        ``compact_map[i]`` is the index in ``original`` where compact character
        ``i``'s source starts.
    compact_end : Sequence[int] or None
        ``compact_end[i]`` is the index in ``original`` just past its source;
        None when that is always ``compact_map[i] + 1``.
    """

    original: str
    text: str
    compact: str
    compact_map: Sequence[int]
    compact_end: Sequence[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of :attr:`compact` to the original string.

        Parameters
        ----------
        start, end : int
            Half-open span in the compact view, ``start < end``.

        Returns
        -------
        tuple[int, int]
            Half-open span in :attr:`original` covering every source character.
        """
        last = end - 1
        stop = self.compact_end[last] if self.compact_end is not None else self.compact_map[last] + 1
        return self.compact_map[start], stop


# Obfuscations agents use for contact, abuse and absolute words, mapped to the
# canonical word so that one lexicon entry and one model feature cover them
# all. ASCII variants only match as whole ASCII words (sb, not the sb in usb).
# Editing this table changes features: bump PREPROCESSING_ID.
_VARIANTS: dict[str, tuple[str, ...]] = {
    "微信": ("威信", "薇信", "徽信", "维信", "V信", "v信", "vx", "weixin", "wechat", "薇❤", "微❤", "v❤", "🛰", "卫星号"),
    "qq": ("扣扣", "抠抠", "口口号"),
    "傻逼": ("煞笔", "沙比", "傻比", "煞比", "傻b", "傻x", "傻×", "sb", "shabi", "煞b"),
    "最": ("zui",),
    "加": ("➕", "jia"),
    "加微信": ("jiaweixin", "jiavx", "jiawx"),
}
# Ordinary words that contain a variant and must stay as they are (抠抠搜搜 is
# "stingy", 扣扣子 "to do up buttons"). They join the same alternation mapped to
# themselves: the longest match wins, so the variant inside them never fires.
_NOT_VARIANTS: tuple[str, ...] = ("抠抠搜搜", "扣扣子")
_CN_DIGITS = {c: str(i) for i, cs in enumerate(("零〇o", "一壹幺", "二贰两", "三叁", "四肆", "五伍", "六陆", "七柒", "八捌", "九玖")) for c in cs}
# Seven or more Chinese numerals in a row spell a phone or account number (一三八零零…);
# shorter runs are ordinary words (一三五, 三七二十一).
_CN_RUN = re.compile("[零〇一壹幺二贰两三叁四肆五伍六陆七柒八捌九玖]{7,}")
# Three or more of the same non-digit character stand for one (傻傻傻逼, 加微微微信,
# 哈哈哈哈); digits and Chinese numerals are left alone because phone and order
# numbers repeat them (一三八零零零…).
_REPEAT_RX = re.compile(r"([^0-9零〇一壹幺二贰两三叁四肆五伍六陆七柒八捌九玖])\1{2,}")


def _variant_regex():
    alts = []
    for canon, variants in _VARIANTS.items():
        for v in variants:
            key = v.lower()
            pat = re.escape(key)
            if key.isascii() and key.isalnum():
                pat = f"(?<![a-z0-9]){pat}(?![a-z0-9])"
            alts.append((len(key), pat, key, canon))
    alts += [(len(w), re.escape(w), w, w) for w in _NOT_VARIANTS]
    alts.sort(key=lambda a: -a[0])  # longest alternatives first
    lookup = {key: canon for _, _, key, canon in alts}
    return re.compile("|".join(p for _, p, _, _ in alts)), lookup


_VARIANT_RX, _VARIANT_CANON = _variant_regex()
# Characters that can start a variant: a message without any of them needs no
# variant scan (Chinese numerals are checked by their own run pattern).
_MAYBE_VARIANT = re.compile("[" + re.escape("".join(sorted({k[0] for k in _VARIANT_CANON}))) + "]")
# Anything canonicalisation could touch: a variant's first character, a numeral
# run, or a repeated character.
_ANY_CANON = re.compile(f"{_MAYBE_VARIANT.pattern}|{_CN_RUN.pattern}|{_REPEAT_RX.pattern}")


def _replace_spans(
    chars: str, starts: Sequence[int], ends: Sequence[int] | None, subs: list[tuple[int, int, str]]
) -> tuple[str, list[int], list[int]]:
    """Replace ``chars[a:b]`` by ``rep`` for each sorted ``(a, b, rep)``, carrying the offset maps.

    A replacement of the same length keeps the per-character map; otherwise every
    new character spans the whole replaced stretch. Overlapping matches: the
    earlier one wins.
    """
    if ends is None:
        ends = [i + 1 for i in starts]
    out: list[str] = []
    o_starts: list[int] = []
    o_ends: list[int] = []
    pos = 0
    for a, b, rep in subs:
        if a < pos:
            continue
        out.append(chars[pos:a])
        o_starts.extend(starts[pos:a])
        o_ends.extend(ends[pos:a])
        if len(rep) == b - a:
            o_starts.extend(starts[a:b])
            o_ends.extend(ends[a:b])
        else:
            o_starts.extend([starts[a]] * len(rep))
            o_ends.extend([ends[b - 1]] * len(rep))
        out.append(rep)
        pos = b
    out.append(chars[pos:])
    o_starts.extend(starts[pos:])
    o_ends.extend(ends[pos:])
    return "".join(out), o_starts, o_ends


def _canonicalise(
    chars: str, starts: Sequence[int], ends: Sequence[int] | None
) -> tuple[str, Sequence[int], Sequence[int] | None]:
    """Replace known obfuscations in the compact view, carrying the offset maps along.

    ``ends`` None means "each character ends right after its start"; it is only
    materialised when a replacement changes the length of a stretch. Repeated
    characters collapse first, so that variants are found in the collapsed text.
    """
    if _ANY_CANON.search(chars) is None:  # one scan rules out almost every message
        return chars, starts, ends
    repeats = [(m.start(), m.end(), chars[m.start()]) for m in _REPEAT_RX.finditer(chars)]
    if repeats:
        chars, starts, ends = _replace_spans(chars, starts, ends, repeats)
    subs: list[tuple[int, int, str]] = []
    if _MAYBE_VARIANT.search(chars) is not None:
        for m in _VARIANT_RX.finditer(chars):
            subs.append((m.start(), m.end(), _VARIANT_CANON[m.group(0)]))
    for m in _CN_RUN.finditer(chars):
        subs.append((m.start(), m.end(), "".join(_CN_DIGITS[c] for c in m.group(0))))
    if not subs:
        return chars, starts, ends
    subs.sort()
    return _replace_spans(chars, starts, ends, subs)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for matching and features, keeping an offset map.

    Parameters
    ----------
    text : str
        Any string, including empty strings, control characters and lone
        surrogates; never raises for a ``str``.

    Returns
    -------
    Normalized
        The normalised and compact views with the compact → original map.

    Examples
    --------
    >>> n = normalize("加.微.信 ＡＢＣ")
    >>> n.compact
    '加微信abc'
    >>> n.original[slice(*n.span(0, 3))]
    '加.微.信'
    """
    simplified = _t2s(text) if text else text
    return _normalize_fast(text, simplified) or _normalize_slow(text, simplified)


def _normalize_fast(text: str, simplified: str) -> Normalized | None:
    """Normalise when every character folds to exactly one character; else None."""
    # Fast path: every character folds to exactly one character (true for almost
    # all chat text), so one str.translate does the folding and indices carry over.
    folded = simplified.translate(_FOLD1)
    if "\x00" not in folded:
        if _SEP_RX.search(folded) is None:
            compact, starts = folded, range(len(folded))
        else:
            starts = [i for i, c in enumerate(folded) if c not in _SEPARATORS]  # type: ignore[assignment]
            compact = "".join([folded[i] for i in starts])
        compact, starts, ends = _canonicalise(compact, starts, None)
        return Normalized(text, " ".join(folded.split()), compact, starts, ends)
    return None


def _normalize_slow(text: str, simplified: str) -> Normalized:
    """Character-by-character normalisation: handles folds that drop or expand characters."""
    norm_chars: list[str] = []
    compact_chars: list[str] = []
    compact_map: list[int] = []
    prev_space = True  # collapses leading whitespace away
    for i, ch in enumerate(simplified):
        folded = _fold_char(ch)
        if not folded:
            continue
        if folded == " ":
            if not prev_space:
                norm_chars.append(" ")
                prev_space = True
            continue
        prev_space = False
        norm_chars.append(folded)
        for c in folded:
            if c not in _SEPARATORS:
                compact_chars.append(c)
                compact_map.append(i)
    if norm_chars and norm_chars[-1] == " ":
        norm_chars.pop()
    compact, starts, ends = _canonicalise("".join(compact_chars), compact_map, None)
    return Normalized(text, "".join(norm_chars), compact, starts, ends)


def _segment(text: str) -> list[str]:
    """Segment Chinese text into words with rjieba (jieba's dictionary, in Rust).

    rjieba gives the same tokens as jieba at ~25x the speed (see
    PERFORMANCE-NOTES); it is imported on first use to keep imports light.
    """
    global _CUT
    if _CUT is None:
        import rjieba

        _CUT = rjieba.cut
    return _CUT(text)


_CUT = None

# Sentence punctuation kept in the compact view; not useful as word tokens.
_PUNCT = frozenset("，。！？：；,!?:;…")


def _shape(text: str) -> str:
    """Replace every ASCII digit by ``0`` so that numbers generalise by shape."""
    return text.translate(_DIGIT_SHAPE)


_DIGIT_SHAPE = str.maketrans("123456789", "000000000")


def model_tokens(norm: Normalized) -> list[str]:
    """Return the model's feature tokens for a normalised message.

    Features are word unigrams and bigrams (``w:`` / ``b:``) from rjieba over the
    compact view, and character 1–3-grams (``c:``) over the same view, with digits
    reduced to their shape. The character 2- and 3-grams also run over a start
    mark (:data:`EDGE_START`) and an end mark (:data:`EDGE_END`), so how a message
    opens and closes ("你是…", "…懂吗？") are features of their own. Training and
    scoring both call this function.

    Parameters
    ----------
    norm : Normalized
        Output of :func:`normalize`.

    Returns
    -------
    list[str]
        Feature tokens, with repeats (the model counts them).
    """
    s = _shape(norm.compact)
    if not s:
        return []
    # Built with map() over C-level string methods: this runs for every message
    # and a Python-level loop per n-gram was a third of the scoring time.
    words = [w for w in _segment(s) if w not in _PUNCT]
    feats = list(map(_W.__add__, words))
    feats += map(_B.__add__, map(_BAR.join, zip(words, words[1:])))
    feats += map(_C.__add__, [c for c in s if c not in _PUNCT])
    p = EDGE_START + s + EDGE_END
    pairs = list(map(str.__add__, p, p[1:]))
    feats += map(_C.__add__, pairs)
    feats += map(_C.__add__, map(str.__add__, pairs, p[2:]))
    return feats


#: Marks around the compact view for character n-grams. Control characters,
#: which :func:`normalize` removes from any input, so no text can forge them.
#: They make "吗？" at the end of a message a different feature from "吗？" in the
#: middle: on the dev split this raised rude_tone F1 0.735 -> 0.793 (rhetorical
#: questions are rude mostly when they close a reply) and macro-F1 by 0.01.
#: Each window of a very long message (see ``bundle.WINDOW``) is marked as if it
#: were a message: a cut inside a sentence then reads as an edge, which only
#: messages over 512 characters meet.
EDGE_START, EDGE_END = "\x02", "\x03"


_W, _B, _C, _BAR = "w:", "b:", "c:", "|"
