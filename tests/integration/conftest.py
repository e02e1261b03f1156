"""Integration fixtures: one real MongoDB-wire server and one real Redis per test session, a fresh
database and an empty Redis per test, moto for AWS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Server, start_mongo, start_redis
from support import OrgFixture, make_org


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_mongo(Path(tmp_path_factory.mktemp("mongo")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_redis(Path(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def stores(
    mongo_server: Server, redis_server: Server, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Point the common layer at the real servers, with a database of its own for each test."""
    from verriflo import auth, cache, db, ledger, ratelimit, settings

    database = "t_" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("MONGODB_URI", mongo_server.url)
    monkeypatch.setenv("MONGODB_DATABASE", database)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    settings.reset_settings()
    db.reset_client()
    cache.reset_client()
    ratelimit.reset_script()
    auth.clear_cache()
    ledger.reset_cache()
    cache.redis_client().flushdb()
    yield {"mongodb": mongo_server.url, "database": database, "redis": redis_server.url}
    # Tests may have pointed the layer at a dead server; clean up through a client of our own.
    from pymongo import MongoClient

    with MongoClient(mongo_server.url) as cleanup:
        cleanup.drop_database(database)
    db.reset_client()
    cache.reset_client()
    ratelimit.reset_script()
    auth.clear_cache()


@pytest.fixture
def org(stores: dict[str, str]) -> OrgFixture:
    return make_org("Acme School")


@pytest.fixture
def other_org(stores: dict[str, str]) -> OrgFixture:
    return make_org("Other Academy")
