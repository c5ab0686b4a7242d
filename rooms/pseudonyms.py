"""Friendly assigned pseudonyms ("Calm Otter") for members who pick no nickname.

The words are gentle and non-judgemental on purpose: someone arriving in a
crisis should not be labelled "Lazy Sloth". Choice is deterministic from the
entropy the shell passes in (the core has no randomness), and unique in the
room: if the chosen name is taken or looks like a taken one, we probe onward
through the 4,096 combinations, then fall back to a numeric suffix, so
assignment always succeeds whatever the room's capacity.
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.nicknames import TakenNames

ADJECTIVES: tuple[str, ...] = (
    "Amber", "Brave", "Breezy", "Bright", "Calm", "Candid", "Caring", "Cheerful",
    "Cosy", "Curious", "Dreamy", "Earnest", "Fair", "Fond", "Free", "Friendly",
    "Generous", "Gentle", "Glad", "Golden", "Good", "Graceful", "Happy", "Honest",
    "Hopeful", "Humble", "Jolly", "Joyful", "Keen", "Kind", "Light", "Lively",
    "Loyal", "Lucky", "Mellow", "Merry", "Mild", "Mindful", "Misty", "Noble",
    "Open", "Patient", "Peaceful", "Placid", "Playful", "Quiet", "Radiant", "Restful",
    "Serene", "Sincere", "Smiling", "Snug", "Soft", "Sparkly", "Spry", "Starry",
    "Steady", "Sunny", "Sweet", "Tender", "Thoughtful", "Tranquil", "Warm", "Wise",
)  # fmt: skip

ANIMALS: tuple[str, ...] = (
    "Alpaca", "Badger", "Bear", "Beaver", "Bee", "Bison", "Butterfly", "Camel",
    "Chipmunk", "Crane", "Deer", "Dolphin", "Dove", "Dragonfly", "Duck", "Elephant",
    "Fawn", "Finch", "Flamingo", "Fox", "Frog", "Giraffe", "Goose", "Hamster",
    "Hare", "Hedgehog", "Heron", "Kingfisher", "Kitten", "Koala", "Ladybird", "Lamb",
    "Lark", "Lemur", "Llama", "Lynx", "Magpie", "Marmot", "Meerkat", "Moose",
    "Newt", "Otter", "Owl", "Panda", "Pelican", "Penguin", "Pony", "Puffin",
    "Puppy", "Quokka", "Rabbit", "Robin", "Seahorse", "Seal", "Sparrow", "Squirrel",
    "Starling", "Stork", "Swan", "Tortoise", "Turtle", "Whale", "Wombat", "Wren",
)  # fmt: skip

COMBINATIONS = len(ADJECTIVES) * len(ANIMALS)


def pseudonym_at(index: int) -> str:
    """The pseudonym for `index` (taken modulo the number of combinations)."""
    i = index % COMBINATIONS
    return f"{ADJECTIVES[i // len(ANIMALS)]} {ANIMALS[i % len(ANIMALS)]}"


def assign(entropy: int, taken: Iterable[str] | TakenNames) -> str:
    """A pseudonym chosen by `entropy` that neither equals nor resembles any of `taken`."""
    index = taken if isinstance(taken, TakenNames) else TakenNames(taken)
    start = entropy % COMBINATIONS
    for step in range(COMBINATIONS):
        candidate = pseudonym_at(start + step)
        if index.conflict(candidate) is None:
            return candidate
    # Every combination is in use (only possible with a capacity above 4,096). Each
    # taken name blocks at most two suffixes (one by case, one by look), so this
    # loop always returns.
    base = pseudonym_at(start)
    for n in range(2, 2 * len(index) + 3):
        candidate = f"{base} {n}"
        if index.conflict(candidate) is None:
            return candidate
    raise AssertionError("unreachable: more suffixes than taken names")
