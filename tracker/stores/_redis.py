"""Redis: many workers on many machines serving turns of the same conversations.

Each session is one hash ``<prefix><session_id>`` with fields ``version``, ``state`` (the
base record), ``epoch`` (``Loaded.epoch``) and ``c:<n>``, the change that produced version
``n``, for each version after the base's (see ``tracker/stores/_changes.py``). A save is one
Lua script, run atomically by the server: it compares the stored version (and epoch, when the
writer names one) with the expected one and, only if they match, either appends one change
field and bumps the version (an append: O(change)), or replaces the whole hash with a new base
(a full save, which drops the log: compaction); either way it refreshes the TTL. A hash
written before change fields existed is a base with an empty log.
So there is no window between check and write for another worker to slip into, and a worker
that dies mid-save has either sent the whole script (new state) or not (old state).

redis-py (``pip install 'tracker[redis]'``) is imported when a store is created, never when
``tracker.stores`` is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Self

import attrs

from .._errors import StoreError, UsageError
from ._base import (
    Loaded,
    check_expected,
    check_session_id,
    conflict,
    corrupt,
    encode_state,
    new_epoch,
    recreated,
)
from ._changes import decode_record

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["DEFAULT_PREFIX", "AsyncRedisStore", "RedisStore"]

DEFAULT_PREFIX = "tracker:session:"
"""Key prefix used when none is given: keys read ``tracker:session:<session_id>``."""

# KEYS[1] session key; ARGV[1] expected version (0: must not exist), ARGV[2] state JSON,
# ARGV[3] TTL in milliseconds (0: keep forever), ARGV[4] the epoch for a new session (or a
# stored one without an epoch), ARGV[5] '1' if the stored epoch must be ARGV[4].
# Returns {1, new_version} | {0, actual_version} (conflict) | {2, actual_version} (another
# epoch: deleted and created again) | {-1, why} (unreadable: untouched).
# The client has read and parsed the state at the expected version before sending this (with
# Python's JSON parser, the one load uses), so a record nobody can load is never overwritten,
# even by a writer that guessed its version; the script re-checks the version.
_CAS_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
local actual = 0
if kind == 'hash' then
  local raw = redis.call('HGET', KEYS[1], 'version')
  actual = tonumber(raw)
  if actual == nil or actual < 1 or actual ~= math.floor(actual) then
    return {-1, 'its version is ' .. tostring(raw) .. ', not a positive integer'}
  end
elseif kind ~= 'none' then
  return {-1, 'its key holds a Redis ' .. kind .. ', not a hash'}
end
local expected = tonumber(ARGV[1])
if actual ~= expected then
  return {0, actual}
end
local epoch = ARGV[4]
if actual > 0 then
  local stored = redis.call('HGET', KEYS[1], 'epoch')
  if stored then
    if ARGV[5] == '1' and stored ~= epoch then
      return {2, actual}
    end
    epoch = stored
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', actual + 1, 'state', ARGV[2], 'epoch', epoch)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return {1, actual + 1}
"""


# The append: KEYS[1] session key; ARGV[1] expected version (>= 1), ARGV[2] change JSON,
# ARGV[3] TTL in milliseconds, ARGV[4] the epoch the session must have ('': any). Same replies
# as _CAS_SCRIPT; a missing session is a conflict.
_APPEND_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return {0, 0}
elseif kind ~= 'hash' then
  return {-1, 'its key holds a Redis ' .. kind .. ', not a hash'}
end
local raw = redis.call('HGET', KEYS[1], 'version')
local actual = tonumber(raw)
if actual == nil or actual < 1 or actual ~= math.floor(actual) then
  return {-1, 'its version is ' .. tostring(raw) .. ', not a positive integer'}
end
if actual ~= tonumber(ARGV[1]) then
  return {0, actual}
end
if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[4] then
  return {2, actual}
end
redis.call('HSET', KEYS[1], 'version', actual + 1, 'c:' .. string.format('%d', actual + 1), ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return {1, actual + 1}
"""


def _import_redis() -> Any:
    try:
        # An optional dependency: imported when a store is created, not with the package.
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            "RedisStore needs redis-py: pip install 'tracker[redis]' (or pip install redis)"
        ) from exc
    return redis


class _RedisBase:
    """What the sync and async stores share: key naming, options, reply interpretation."""

    def __init__(self, prefix: str, ttl: float | None) -> None:
        if ttl is not None and ttl <= 0:
            raise UsageError(
                f"Redis store ttl must be a positive number of seconds (or None: keep "
                f"sessions forever), got {ttl!r}"
            )
        self._redis_error: type[Exception] = _import_redis().exceptions.RedisError
        self.prefix = prefix
        self.ttl = ttl
        self._ttl_ms = 0 if ttl is None else max(1, round(ttl * 1000))

    def _key(self, session_id: str) -> str:
        return self.prefix + check_session_id(session_id)

    @contextlib.contextmanager
    def _failures(self, session_id: str | None, doing: str) -> Iterator[None]:
        """Turn redis-py's own errors (connection refused, timeouts, ...) into StoreError."""
        try:
            yield
        except self._redis_error as exc:
            what = f"session {session_id!r}" if session_id is not None else "the session list"
            outcome = (
                " The save may or may not have been applied: load the session to see its version."
                if doing == "save"
                else ""
            )
            raise StoreError(
                f"Redis store could not {doing} {what}: {exc}. Check that the server in the "
                f"store URL is running and reachable.{outcome}",
                session_id=session_id,
            ) from exc

    def _pattern(self) -> str:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"

    def _session_of(self, key: bytes | str) -> str:
        text = key.decode() if isinstance(key, bytes) else key
        return text[len(self.prefix) :]

    def _check_readable(self, session_id: str, expected: int, kind: Any, fields: Any) -> None:
        """Raise unless the stored record is at ``expected`` and ``load`` can read it."""
        loaded = self._loaded(session_id, kind, fields)
        actual = 0 if loaded is None else loaded.version
        if actual != expected:
            raise conflict(session_id, expected, actual)

    def _cas_args(
        self, session_id: str, state: Mapping[str, Any], expected_version: int | None
    ) -> tuple[int, list[Any]]:
        expected = check_expected(session_id, expected_version)
        return expected, [expected, encode_state(session_id, state), self._ttl_ms]

    def _save_args(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        epoch: str | None,
    ) -> tuple[int, list[Any]]:
        expected, args = self._cas_args(session_id, state, expected_version)
        fresh = new_epoch() if epoch is None else epoch
        return expected, [*args, fresh, "0" if epoch is None else "1"]

    @staticmethod
    def _cas_result(session_id: str, expected: int, reply: Any) -> int:
        status, value = int(reply[0]), reply[1]
        if status == 1:
            return int(value)
        if status == 0:
            raise conflict(session_id, expected, int(value))
        if status == 2:
            raise recreated(session_id, int(value))
        raise corrupt(session_id, value.decode() if isinstance(value, bytes) else str(value))

    @staticmethod
    def _loaded(session_id: str, kind: Any, fields: Any) -> Loaded | None:
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "none":
            return None
        if kind != "hash":
            raise corrupt(session_id, f"its key holds a Redis {kind}, not a hash")
        changes: list[tuple[Any, Any]] = []
        for name, value in fields.items():
            field = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            if field.startswith("c:"):
                number = field[2:]
                changes.append((int(number) if number.isdigit() else number, value))
        changes.sort(key=lambda change: str(change[0]).zfill(20))  # numeric order
        version = fields.get(b"version", fields.get("version"))  # decode_responses clients
        loaded = decode_record(
            session_id, version, fields.get(b"state", fields.get("state")), changes
        )
        epoch = fields.get(b"epoch", fields.get("epoch"))
        if isinstance(epoch, bytes):
            epoch = epoch.decode(errors="replace")
        return attrs.evolve(loaded, epoch=epoch if isinstance(epoch, str) else None)


class RedisStore(_RedisBase):
    """A ``Store`` in Redis, for many workers; compare-and-set runs atomically on the server.

    Give either ``url`` (``redis://host:port/db``, ``rediss://`` for TLS, ``unix://``) or a
    ready ``client`` (``redis.Redis``; a client passed in is not closed by ``close()``).
    ``prefix`` namespaces the keys; ``ttl`` (seconds) makes a session expire that long after
    its last save.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
    ) -> None:
        super().__init__(prefix, ttl)
        if (url is None) == (client is None):
            raise UsageError(
                "RedisStore needs exactly one of url= or client=: pass "
                "RedisStore('redis://host:6379/0') or RedisStore(client=redis.Redis(...))"
            )
        redis_mod = _import_redis()
        self._owns_client = client is None
        self.client: redis.Redis = redis_mod.Redis.from_url(url) if client is None else client
        self._cas = self.client.register_script(_CAS_SCRIPT)
        self._append = self.client.register_script(_APPEND_SCRIPT)

    def _before_commit(self, session_id: str) -> None:
        """Test seam: runs inside a save, after the checks, right before the script is sent."""

    def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        key = self._key(session_id)
        # One round trip in a MULTI, so the type and the fields belong to the same version.
        with self._failures(session_id, "load"), self.client.pipeline(transaction=True) as pipe:
            pipe.type(key)
            pipe.hgetall(key)
            kind, fields = pipe.execute(raise_on_error=False)
        return self._loaded(session_id, kind, fields)

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.save``."""
        key = self._key(session_id)
        expected, args = self._save_args(session_id, state, expected_version, epoch)
        if expected:
            with self._failures(session_id, "save"), self.client.pipeline() as pipe:
                pipe.type(key)
                pipe.hgetall(key)
                self._check_readable(session_id, expected, *pipe.execute(raise_on_error=False))
        self._before_commit(session_id)
        with self._failures(session_id, "save"):
            reply = self._cas(keys=[key], args=args)
        return self._cas_result(session_id, expected, reply)

    def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append``: one small script, whatever the session's size."""
        key = self._key(session_id)
        expected, args = self._cas_args(session_id, change, expected_version)
        args.append(epoch or "")
        self._before_commit(session_id)
        with self._failures(session_id, "save"):
            reply = self._append(keys=[key], args=args)
        return self._cas_result(session_id, expected, reply)

    def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        with self._failures(session_id, "delete"):
            return bool(self.client.delete(self._key(session_id)))

    def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        with self._failures(None, "list"):
            keys = list(self.client.scan_iter(match=self._pattern(), count=1000))
        return sorted(self._session_of(key) for key in keys)

    def close(self) -> None:
        """See ``Store.close``."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRedisStore(_RedisBase):
    """The ``AsyncStore`` form of ``RedisStore`` (``redis.asyncio``); same arguments."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.asyncio.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
    ) -> None:
        super().__init__(prefix, ttl)
        if (url is None) == (client is None):
            raise UsageError(
                "AsyncRedisStore needs exactly one of url= or client=: pass a redis:// URL "
                "or client=redis.asyncio.Redis(...)"
            )
        redis_mod = _import_redis()
        self._owns_client = client is None
        self.client: redis.asyncio.Redis = (
            redis_mod.asyncio.Redis.from_url(url) if client is None else client
        )
        self._cas = self.client.register_script(_CAS_SCRIPT)
        self._append = self.client.register_script(_APPEND_SCRIPT)

    async def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        key = self._key(session_id)
        with self._failures(session_id, "load"):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.type(key)
                pipe.hgetall(key)
                kind, fields = await pipe.execute(raise_on_error=False)
        return self._loaded(session_id, kind, fields)

    async def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.save``."""
        key = self._key(session_id)
        expected, args = self._save_args(session_id, state, expected_version, epoch)
        if expected:
            with self._failures(session_id, "save"):
                async with self.client.pipeline() as pipe:
                    pipe.type(key)
                    pipe.hgetall(key)
                    replies = await pipe.execute(raise_on_error=False)
            self._check_readable(session_id, expected, *replies)
        with self._failures(session_id, "save"):
            reply = await self._cas(keys=[key], args=args)
        return self._cas_result(session_id, expected, reply)

    async def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append``."""
        key = self._key(session_id)
        expected, args = self._cas_args(session_id, change, expected_version)
        args.append(epoch or "")
        with self._failures(session_id, "save"):
            reply = await self._append(keys=[key], args=args)
        return self._cas_result(session_id, expected, reply)

    async def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        with self._failures(session_id, "delete"):
            return bool(await self.client.delete(self._key(session_id)))

    async def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        with self._failures(None, "list"):
            keys = [key async for key in self.client.scan_iter(match=self._pattern(), count=1000)]
        return sorted(self._session_of(key) for key in keys)

    async def close(self) -> None:
        """See ``Store.close``."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
