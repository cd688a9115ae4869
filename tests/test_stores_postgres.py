"""PostgresStore specifics: what a load reads from the server, on a real ``postgres``."""

from __future__ import annotations

from typing import Any

from tracker.stores import PostgresStore
from tracker.stores._changes import encode_change


def _counting_rows(read: list[int]) -> Any:
    """A psycopg row factory that adds the characters of every text value fetched to ``read``."""

    def factory(cursor: Any) -> Any:
        def row(values: Any) -> tuple[Any, ...]:
            read.append(sum(len(v) for v in values if isinstance(v, str)))
            read.extend(
                len(x) for v in values if isinstance(v, list) for x in v if isinstance(x, str)
            )
            return tuple(values)

        return row

    return factory


def test_a_load_reads_the_base_once_however_long_the_change_log(postgres_url: str) -> None:
    """A load fetches the base once beside its changes, not once per change row."""
    base = {"big": "x" * 100_000, "n": []}
    with PostgresStore(postgres_url) as store:
        version = store.save("s", base, None)
        for n in range(20):
            version = store.append("s", encode_change([["extend", ["n"], [n]]]), version)
        read: list[int] = []
        store._conn.row_factory = _counting_rows(read)
        loaded = store.load("s")
    assert loaded is not None
    assert ({"big": base["big"], "n": list(range(20))}, 21) == (loaded.state, loaded.version)
    assert sum(read) < 2 * len(base["big"])
