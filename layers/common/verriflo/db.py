"""MongoDB access: one lazily created client per process, and indexes ensured once per collection.

Modules that own a collection declare its indexes with `register_indexes`; the first `collection()`
call for it in a process creates them (create_indexes is idempotent on the server).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from verriflo.errors import ServiceUnavailable
from verriflo.settings import api_settings, store_settings

if TYPE_CHECKING:
    from pymongo import IndexModel, MongoClient
    from pymongo.client_session import ClientSession
    from pymongo.collection import Collection
    from pymongo.database import Database

T = TypeVar("T")

_INDEXES: dict[str, list[Callable[[], list[IndexModel]]]] = {}
_ensured: set[str] = set()
_lock = threading.Lock()


def register_indexes(name: str, build: Callable[[], list[IndexModel]]) -> None:
    """Declare the indexes of collection `name` (built lazily, so pymongo loads on first use)."""
    _INDEXES.setdefault(name, []).append(build)


@cache
def client() -> MongoClient:
    """The process-wide MongoClient (pymongo pools connections and is thread-safe)."""
    from pymongo import MongoClient

    settings = store_settings()
    timeout = settings.mongodb_timeout_ms
    return MongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout * 5, 10_000),
        appname="verriflo",
        tz_aware=True,
    )


def database() -> Database:
    """The application database: MONGODB_DATABASE, else the URI's, else `verriflo`."""
    settings = store_settings()
    name = settings.mongodb_database
    if name:
        return client()[name]
    try:
        return client().get_default_database()
    except Exception:  # noqa: BLE001 - pymongo raises ConfigurationError when the URI names none
        return client()["verriflo"]


def collection(name: str) -> Collection:
    """A collection, with its registered indexes ensured once per process."""
    coll = database()[name]
    if name not in _ensured and name in _INDEXES:
        with _lock:
            if name not in _ensured:
                with unavailable_on_failure():
                    models = [m for build in _INDEXES[name] for m in build()]
                    coll.create_indexes(models)
                _ensured.add(name)
    return coll


def ensure_all_indexes() -> list[str]:
    """Create every registered index now (the operators' CLI and deploy call this)."""
    for name in list(_INDEXES):
        collection(name)
    return sorted(_INDEXES)


@contextmanager
def unavailable_on_failure() -> Iterator[None]:
    """Turn 'cannot reach MongoDB' into ServiceUnavailable, so callers answer 503, not 500."""
    from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

    try:
        yield
    except (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect) as exc:
        raise ServiceUnavailable(
            "The database is unavailable; retry shortly.",
            headers={"Retry-After": str(api_settings().retry_after_s)},
        ) from exc


def in_transaction(work: Callable[[ClientSession], T]) -> T:  # noqa: UP047
    """Run `work` in a multi-document transaction, retried on transient conflicts by pymongo."""
    from pymongo import ReadPreference
    from pymongo.read_concern import ReadConcern
    from pymongo.write_concern import WriteConcern

    with unavailable_on_failure(), client().start_session() as session:
        return session.with_transaction(
            work,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
            read_preference=ReadPreference.PRIMARY,
        )


def ping() -> dict[str, Any]:
    """Round trip to the server (health checks)."""
    with unavailable_on_failure():
        return database().command("ping")


def reset_client() -> None:
    """Drop the cached client and index bookkeeping (tests point at fresh servers)."""
    if client.cache_info().currsize:
        client().close()
    client.cache_clear()
    _ensured.clear()
