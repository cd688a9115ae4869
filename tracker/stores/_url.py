"""Open a store from a URL, for the command line and configuration files.

memory://                       MemoryStore (this process only)
sqlite:///relative/path.db      SQLiteStore; three slashes, then a path relative to the cwd
sqlite:////absolute/path.db     four slashes: an absolute path (SQLAlchemy's convention)
sqlite:///:memory:              an in-memory SQLite database
redis://host:port/db            RedisStore (also rediss:// for TLS and unix:///path.sock)
postgresql://user@host/db       PostgresStore (also postgres://); any libpq URL
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from tracker._errors import UsageError

from ._base import AsyncStore, Store
from ._memory import AsyncMemoryStore, MemoryStore
from ._postgres import AsyncPostgresStore, PostgresStore
from ._redis import AsyncRedisStore, RedisStore
from ._sqlite import AsyncSQLiteStore, SQLiteStore

__all__ = ["open_async_store", "open_store"]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_HELP = (
    "use memory://, sqlite:///relative.db, sqlite:////absolute.db, redis://host:port/db or "
    "postgresql://user@host:5432/db"
)


def _parse(url: str) -> tuple[str, str]:
    """Return ``(kind, target)``: kind is memory/sqlite/redis, target the path or the URL."""
    if not isinstance(url, str) or "://" not in url:
        raise UsageError(f"store URL {url!r} has no scheme: {_HELP}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise UsageError(f"memory:// takes no host or path, got {url!r}: use memory://")
        return "memory", ""
    if scheme == "sqlite":
        if parts.netloc:
            raise UsageError(
                f"sqlite URL {url!r} names a host ({parts.netloc!r}); SQLite is a local file: "
                "use sqlite:///relative.db or sqlite:////absolute.db"
            )
        path = unquote(parts.path[1:])
        if not path:
            raise UsageError(f"sqlite URL {url!r} has no file path: use sqlite:///path/to/file.db")
        return "sqlite", path
    if scheme in _REDIS_SCHEMES:
        return "redis", url
    if scheme in ("postgresql", "postgres"):
        return "postgres", url
    raise UsageError(f"unknown store URL scheme {parts.scheme!r} in {url!r}: {_HELP}")


def open_store(url: str, **options: Any) -> Store:
    """Open the ``Store`` a URL names (see the module docstring for the forms).

    ``options`` go to the store's constructor (``timeout=`` for SQLite and Postgres,
    ``prefix=``/``ttl=`` for Redis). Raises ``UsageError`` naming the URL for an unknown
    scheme or a malformed URL.
    """
    kind, target = _parse(url)
    if kind == "memory":
        return MemoryStore(**options)
    if kind == "sqlite":
        return SQLiteStore(target, **options)
    if kind == "postgres":
        return PostgresStore(target, **options)
    return RedisStore(target, **options)


def open_async_store(url: str, **options: Any) -> AsyncStore:
    """Open the ``AsyncStore`` a URL names; see ``open_store``."""
    kind, target = _parse(url)
    if kind == "memory":
        return AsyncMemoryStore(**options)
    if kind == "sqlite":
        return AsyncSQLiteStore(target, **options)
    if kind == "postgres":
        return AsyncPostgresStore(target, **options)
    return AsyncRedisStore(target, **options)
