"""Reports count by address group, not by seat; address keys join a room's bans after the ban."""

from __future__ import annotations

from rooms_helpers import POLICY, T0, alive, create, joined

from rooms import AddBanKey, Report, decide

DIGEST = b"d" * 32


def test_three_seats_of_one_group_count_once_and_three_groups_hide() -> None:
    room = joined(create(), "a", "b", "c", "d", "e")
    for member in ("a", "b", "c"):
        room = alive(decide(room, Report(member, DIGEST, T0 + 1, group="g1")))
    flag = room.flag(DIGEST)
    assert flag is not None and len(flag.reporters) == 3 and not flag.hidden
    room = alive(decide(room, Report("d", DIGEST, T0 + 2, group="g2")))
    assert not room.flag(DIGEST).hidden  # type: ignore[union-attr]
    room = alive(decide(room, Report("e", DIGEST, T0 + 3, group="g3")))
    assert room.flag(DIGEST).hidden  # type: ignore[union-attr]


def test_a_reporter_of_unknown_address_counts_alone() -> None:
    room = joined(create(), "a", "b", "c")
    for member in ("a", "b", "c"):
        room = alive(decide(room, Report(member, DIGEST, T0 + 1)))
    assert room.flag(DIGEST).hidden  # type: ignore[union-attr]


def test_an_address_key_joins_the_bans_once_within_the_bound() -> None:
    room = create()
    room = alive(decide(room, AddBanKey("addr:x", T0)))
    assert "addr:x" in room.bans
    assert alive(decide(room, AddBanKey("addr:x", T0))) == room
    assert alive(decide(room, AddBanKey("", T0))) == room
    full = room
    for i in range(POLICY.max_bans + 5):
        full = alive(decide(full, AddBanKey(f"addr:{i}", T0)))
    assert len(full.bans) == POLICY.max_bans
