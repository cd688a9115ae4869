"""The identity index holds what it remembers, so addresses cannot be reused under it."""

from __future__ import annotations

from tracker._identity import IdentityMap, IdentitySet


def test_equal_but_distinct_objects_are_different_members() -> None:
    """Membership is by identity, not equality."""
    s = IdentitySet()
    a, b = {"x": 1}, {"x": 1}
    s.add(a)
    assert (True, False) == (a in s, b in s)


def test_held_object_keeps_its_address_from_being_reused() -> None:
    """A remembered object stays alive, so a fresh object never shares its id()."""
    m: IdentityMap[str] = IdentityMap()
    m.set({"k": 0}, "first")  # the only reference is the map's
    fresh = [{"k": i} for i in range(1000)]
    assert all(f not in m for f in fresh)
    assert 1 == len(m)


def test_pop_and_discard_forget_exactly_that_object() -> None:
    """pop returns the value of exactly that object and forgets it."""
    m: IdentityMap[int] = IdentityMap()
    a, b = [], []
    m.set(a, 1)
    m.set(b, 2)
    assert (1, None, 1) == (m.pop(a), m.pop(a), len(m))
