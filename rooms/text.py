"""Shared rules for short user-chosen text (nicknames, topics).

Other people read these strings, so they must render as what they are: no
characters that are invisible, reorder text (bidi overrides), paint nothing
(Hangul fillers, braille blank), change the previous glyph silently
(variation selectors, tags) or depend on a font (private use, unassigned).
"""

from __future__ import annotations

import unicodedata

# Categories that never belong in a display name: controls, format (bidi
# controls, zero-width joiners, tags), private use, surrogates, unassigned,
# and line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})

# Characters in otherwise harmless categories that render as blank or alter
# their neighbour invisibly.
_UNSAFE_CODEPOINTS = frozenset(
    {
        0x115F,  # HANGUL CHOSEONG FILLER
        0x1160,  # HANGUL JUNGSEONG FILLER
        0x3164,  # HANGUL FILLER
        0xFFA0,  # HALFWIDTH HANGUL FILLER
        0x2800,  # BRAILLE PATTERN BLANK
        0x034F,  # COMBINING GRAPHEME JOINER
        0x17B4,  # KHMER VOWEL INHERENT AQ
        0x17B5,  # KHMER VOWEL INHERENT AA
        0x180B,  # MONGOLIAN FREE VARIATION SELECTOR ONE
        0x180C,
        0x180D,
        0x180E,  # MONGOLIAN VOWEL SEPARATOR
        0x180F,
        0x1D159,  # MUSICAL SYMBOL NULL NOTEHEAD
    }
)

_UNSAFE_RANGES = (
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0100, 0xE01EF),  # variation selectors supplement
    (0xE0000, 0xE007F),  # tags
)

# Stacked combining marks ("zalgo") overflow their line; two per base character
# covers every real orthography we expect in a nickname or topic.
MAX_MARKS_PER_BASE = 2


def is_unsafe_char(ch: str) -> bool:
    """True for a character that is invisible, reorders text or renders unreliably."""
    cp = ord(ch)
    if unicodedata.category(ch) in _UNSAFE_CATEGORIES or cp in _UNSAFE_CODEPOINTS:
        return True
    return any(lo <= cp <= hi for lo, hi in _UNSAFE_RANGES)


def normalise(raw: str) -> str:
    """NFKC, trim, and collapse every run of spaces to one ASCII space.

    NFKC first so that full-width and styled letters become plain ones and most
    exotic spaces become U+0020. Only space separators (Zs) are collapsed: tabs,
    newlines and line/paragraph separators are left in place for
    `is_safe_text` to refuse, rather than silently turned into spaces.
    """
    spaced = "".join(
        " " if unicodedata.category(ch) == "Zs" else ch for ch in unicodedata.normalize("NFKC", raw)
    )
    return " ".join(part for part in spaced.split(" ") if part)


def is_safe_text(text: str) -> bool:
    """True if `text` has no unsafe character, no leading mark and no mark pile-up."""
    # Start as if a full pile of marks preceded the text, so a leading mark fails.
    marks = MAX_MARKS_PER_BASE
    for ch in text:
        if is_unsafe_char(ch):
            return False
        if unicodedata.category(ch).startswith("M"):
            marks += 1
            if marks > MAX_MARKS_PER_BASE:
                return False
        else:
            marks = 0
    return True


def has_letter_or_digit(text: str) -> bool:
    """True if some character is a letter or a number, so the text is not just punctuation."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
