"""Search keys: the form in which names, aliases and queries are compared.

A key is lower-case ASCII without spaces or punctuation, with every Hangul syllable spelled
out jamo by jamo in a romanisation. That gives pg_trgm something to work with in any database
locale (with LC_CTYPE=C, PostgreSQL treats Hangul as non-alphanumeric and extracts no trigrams
at all), lets one wrong vowel cost one letter instead of a whole syllable (페트병/패트병), and
makes spacing variants (택배 박스/택배박스) identical. Vowels and final consonants that Koreans
commonly confuse in spelling (ㅐ/ㅔ, ㅙ/ㅚ/ㅞ, final ㅅ/ㅈ/ㅊ/ㅌ/ㅎ) share one spelling.
"""

from __future__ import annotations

import re
import unicodedata

_INITIALS = (
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s",
    "ss", "", "j", "jj", "ch", "k", "t", "p", "h",
)  # fmt: skip
_MEDIALS = (
    "a", "e", "ya", "ye", "eo", "e", "yeo", "ye", "o", "wa", "we",
    "we", "yo", "u", "wo", "we", "wi", "yu", "eu", "ui", "i",
)  # fmt: skip
_FINALS = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "l", "l", "l", "l", "l",
    "l", "l", "m", "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip
_SYLLABLE_FIRST = 0xAC00
_SYLLABLE_LAST = 0xD7A3
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def _romanize(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if _SYLLABLE_FIRST <= code <= _SYLLABLE_LAST:
            index = code - _SYLLABLE_FIRST
            out.append(_INITIALS[index // 588])
            out.append(_MEDIALS[(index % 588) // 28])
            out.append(_FINALS[index % 28])
        else:
            out.append(char)
    return "".join(out)


def search_key(text: str) -> str:
    """The comparable form of ``text``; empty when nothing searchable is left."""
    # NFKC composes decomposed Hangul (as some phone keyboards send it) and folds full-width
    # Latin letters and digits to ASCII.
    composed = unicodedata.normalize("NFKC", text).lower()
    return _NOT_KEY.sub("", _romanize(composed))
