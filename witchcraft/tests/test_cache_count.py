"""The cache's window counter (``count``): what the rate limits count with, one round trip to
Redis. Against the machine's Redis (database 14) and the local-memory cache."""

import time
import uuid

import pytest
import redis as redis_client

from witchcraft.operations.metrics.cache import LocMemCache, RedisCache
from witchcraft.platform.ratelimit import count_in_window

REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_cache():
    try:
        redis_client.Redis.from_url(REDIS_URL).ping()
    except redis_client.ConnectionError:  # pragma: no cover - the machine starts Redis
        pytest.fail(f"Redis is not answering at {REDIS_URL}")
    cache = RedisCache(REDIS_URL, {})
    yield cache
    cache.clear()


@pytest.fixture(params=["redis", "locmem"])
def cache(request, redis_cache):
    return redis_cache if request.param == "redis" else LocMemCache(uuid.uuid4().hex, {})


def test_count_starts_at_one_adds_one_and_reads_back_as_a_number(cache):
    key = f"k-{uuid.uuid4().hex}"
    assert [cache.count(key, timeout=60) for _ in range(3)] == [1, 2, 3]
    assert cache.get(key) == 3
    assert cache.incr(key) == 4  # the same counter as Django's incr()


def test_the_counter_expires_after_its_timeout(cache):
    key = f"k-{uuid.uuid4().hex}"
    assert cache.count(key, timeout=1) == 1
    time.sleep(2.1)
    assert cache.get(key) is None
    assert cache.count(key, timeout=1) == 1


def test_the_redis_counter_is_one_round_trip(redis_cache, monkeypatch):
    key = f"k-{uuid.uuid4().hex}"
    sent = []
    client_class = type(redis_cache._cache.get_client(key, write=True))
    original = client_class.execute_command
    pipeline_class = type(redis_cache._cache.get_client(key, write=True).pipeline())
    original_pipeline = pipeline_class.execute

    def counting(self, *args, **kwargs):
        sent.append(args[0])
        return original(self, *args, **kwargs)

    def counting_pipeline(self, *args, **kwargs):
        sent.append("pipeline")
        return original_pipeline(self, *args, **kwargs)

    monkeypatch.setattr(client_class, "execute_command", counting)
    monkeypatch.setattr(pipeline_class, "execute", counting_pipeline)
    assert redis_cache.count(key, timeout=60) == 1
    assert sent == ["pipeline"]


def test_rate_limit_windows_count_through_it(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "witchcraft.operations.metrics.cache.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    key = f"probe-{uuid.uuid4().hex}"
    counts = [count_in_window(key, 60)[0] for _ in range(3)]
    assert counts == [1, 2, 3]
