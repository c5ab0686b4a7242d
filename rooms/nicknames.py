"""Nickname validation: readable, unique, and never a disguise.

In a support room a nickname that looks like "Therapist" or like another
member's name is a safety problem, not a cosmetic one: vulnerable people may
trust or confide in the wrong person. So, after normalising (see `rooms.text`),
we compare names on a confusable skeleton (see `rooms.skeleton`) rather than
on raw strings, and we refuse role words on that skeleton too.

Role words come in two strengths. Long, unambiguous ones (therapist,
moderator, admin, doctor, ...) are refused anywhere in the separator-free
skeleton, so "T.h.e.r.a.p.i.s.t" and "NurseTherapistJo" fail; the price is that
an innocent "Badminton Fan" also fails, which we accept. Short ones (mod, host,
dr, staff, ...) would hit innocent words ("Gentle Ghost", "Modest Owl",
"Andrew"), so they are refused only as a whole word (split at separators and
camelCase), optionally plural, or as the entire name.

Every refusal message is fixed text: the rejected name is never echoed.
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.errors import Refusal, RefusalCode, refuse
from rooms.model import Member, Waiter
from rooms.skeleton import compact, skeleton
from rooms.text import has_letter_or_digit, is_safe_text, normalise

MIN_NICKNAME_CHARS = 2
MAX_NICKNAME_CHARS = 32

_ROLE_SUBSTRINGS = tuple(
    compact(word)
    for word in (
        "therapist",
        "therapy team",
        "moderator",
        "administrator",
        "admin",
        "counsellor",
        "counselor",
        "official",
        "support team",
        "doctor",
        "psychologist",
        "psychiatrist",
    )
)
_ROLE_WORDS = frozenset(
    compact(word) for word in ("mod", "host", "dr", "staff", "system", "nurse", "sysop")
)


def imitates_role(name: str) -> bool:
    """True if `name` (already normalised) reads as a staff or role title."""
    whole = compact(name)
    if any(word in whole for word in _ROLE_SUBSTRINGS):
        return True
    tokens = skeleton(name).split()
    candidates = {whole, *tokens}
    return any(t in _ROLE_WORDS or (t.endswith("s") and t[:-1] in _ROLE_WORDS) for t in candidates)


def lookalike_key(name: str) -> str:
    """The key two names are confusable by (equal keys: one would pass for the other)."""
    # Names with no letters or digits are refused earlier, so `compact` is never empty
    # for a valid name; fall back to the casefold just in case of odd scripts.
    return compact(name) or name.casefold()


def validate_nickname(
    raw: str,
    taken: Iterable[str] | TakenNames,
    *,
    min_chars: int = MIN_NICKNAME_CHARS,
    max_chars: int = MAX_NICKNAME_CHARS,
) -> str | Refusal:
    """Return the normalised nickname, or a refusal saying (without echoing it) why not.

    `taken` holds the pseudonyms of the *other* members of the room (or their `taken_names`).
    """
    name = normalise(raw)
    if not min_chars <= len(name) <= max_chars:
        return refuse(
            RefusalCode.nickname_invalid,
            f"Nicknames must be {min_chars} to {max_chars} characters long.",
        )
    if not is_safe_text(name):
        return refuse(
            RefusalCode.nickname_invalid,
            "Nicknames cannot contain invisible, control or formatting characters.",
        )
    if not has_letter_or_digit(name):
        return refuse(RefusalCode.nickname_invalid, "Nicknames need at least one letter or digit.")
    if imitates_role(name):
        return refuse(
            RefusalCode.nickname_reserved,
            "Nicknames cannot look like a role or staff title; please choose another.",
        )
    index = taken if isinstance(taken, TakenNames) else TakenNames(taken)
    clash = index.conflict(name)
    if clash is RefusalCode.nickname_taken:
        return refuse(clash, "Someone in this room already uses that name.")
    if clash is RefusalCode.nickname_confusable:
        return refuse(clash, "That name looks too much like someone else's in this room.")
    return name


class TakenNames:
    """Precomputed comparison keys for a set of names, so many candidates check fast.

    `keys` are the names' `lookalike_key`s when the caller has them stored (a room's members do),
    in the same order; otherwise they are derived here."""

    __slots__ = ("_folded", "_keys")

    def __init__(self, names: Iterable[str], keys: Iterable[str] | None = None) -> None:
        names = tuple(names)
        self._folded = frozenset(n.casefold() for n in names)
        if keys is None:
            self._keys = frozenset(lookalike_key(n) for n in names)
        else:
            self._keys = frozenset(keys)

    def __len__(self) -> int:
        return len(self._folded)

    def conflict(self, name: str) -> RefusalCode | None:
        """`nickname_taken`, `nickname_confusable`, or None if `name` is free."""
        if name.casefold() in self._folded:
            return RefusalCode.nickname_taken
        if lookalike_key(name) in self._keys:
            return RefusalCode.nickname_confusable
        return None


def taken_names(
    members: Iterable[Member], but: str | None = None, waiters: Iterable[Waiter] = ()
) -> TakenNames:
    """The names of `members` (and `waiters`) other than `but`'s, from the members' stored keys."""
    others = [m for m in members if m.member_id != but]
    queued = [w.pseudonym for w in waiters if w.member_id != but]
    return TakenNames(
        [m.pseudonym for m in others] + queued,
        [m.name_key or lookalike_key(m.pseudonym) for m in others]
        + [lookalike_key(n) for n in queued],
    )
