"""A confusable "skeleton": two names with the same skeleton look alike.

Why this shape. Unicode TR39 defines a skeleton (map every character to a
prototype, compare the results). Python has no TR39 implementation in the
standard library; `confusable_homoglyphs` ships the Unicode confusables data as
a plain table (loaded once at import, pure data afterwards), but its API answers
"is this string mixed-script?", not "do these two strings look alike?". So we
derive a prototype table from its data (every non-ASCII character that looks
like an ASCII letter or digit maps to that ASCII text: Cyrillic "е" to "e",
Greek "Ι" to "l") and add, by hand, the ASCII look-alikes TR39 leaves alone but
people use to dodge filters ("0" for "o", "1"/"I"/"|" for "l", "rn" for "m",
"@" for "a"). We deliberately over-merge (i, l and 1 are one letter here): a
false "looks alike" costs someone a second nickname choice, a false "looks
different" lets a stranger pass as another member or as the therapist.

Steps: NFKD (split accents off), drop combining marks, map to prototypes, mark
camelCase boundaries, casefold, map again (casefold can expose new non-ASCII
lowercase letters), then fold ASCII look-alikes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

from confusable_homoglyphs.confusables import confusables_data


def _ascii_prototype(candidates: list[dict[str, str]]) -> str | None:
    for entry in candidates:
        # The data wraps right-to-left glyphs in LEFT-TO-RIGHT MARKs; drop them.
        text = entry["c"].replace("\u200e", "")
        if text and text.isascii() and text.isalnum():
            return text
    return None


def _build_prototypes() -> Mapping[str, str]:
    table: dict[str, str] = {}
    for char, candidates in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue  # ASCII look-alikes are folded by hand below, more aggressively
        proto = _ascii_prototype(candidates)
        if proto is not None:
            table[char] = proto
    return MappingProxyType(table)


_PROTOTYPES = _build_prototypes()

# Applied after casefolding: each ASCII look-alike becomes one representative.
_ASCII_FOLD = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "i": "l",
        "|": "l",
        "!": "l",
        "2": "z",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "6": "b",
        "7": "t",
        "+": "t",
        "8": "b",
        "9": "g",
    }
)
_ASCII_DIGRAPHS = (("rn", "m"), ("vv", "w"), ("cl", "d"))

_CAMEL_BREAK = " "


def _to_prototypes(text: str) -> str:
    return "".join(_PROTOTYPES.get(ch, ch) for ch in text)


def _split_camel(text: str) -> str:
    out: list[str] = []
    prev_lower = False
    for ch in text:
        if prev_lower and ch.isupper():
            out.append(_CAMEL_BREAK)
        out.append(ch)
        prev_lower = ch.islower()
    return "".join(out)


def skeleton(text: str) -> str:
    """Lower-case look-alike form of `text`; separators and word breaks are kept as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    folded = _to_prototypes(_split_camel(_to_prototypes(bare))).casefold()
    folded = _to_prototypes(folded).casefold().translate(_ASCII_FOLD)
    for digraph, single in _ASCII_DIGRAPHS:
        folded = folded.replace(digraph, single)
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def compact(text: str) -> str:
    """The skeleton with every separator removed: "T.h e-rapist" and "therapist" agree."""
    return skeleton(text).replace(" ", "")
