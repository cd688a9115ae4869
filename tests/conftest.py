"""Fixtures shared across test modules."""

from _redis_server import redis_server, redis_url  # noqa: F401 - real redis-server fixtures
