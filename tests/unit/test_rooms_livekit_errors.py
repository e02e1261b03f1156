"""How LiveKit's failures reach API callers: each driver error becomes one domain error."""

from __future__ import annotations

import aiohttp
import pytest
from livekit.api import ServerError
from rooms import lk
from verriflo.errors import Conflict, NotFound, ServiceUnavailable, UpstreamError


@pytest.fixture(autouse=True)
def no_client(monkeypatch):
    monkeypatch.setattr(lk, "_client", lambda: object())


def failing(exc: BaseException, *, times: int = 10, result: object = "ok"):
    calls = {"n": 0}

    async def attempt():
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc
        return result

    return calls, (lambda _client: attempt())


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ServerError("not_found", "room does not exist", status=404), NotFound),
        (ServerError("failed_precondition", "egress not active", status=412), Conflict),
        (ServerError("unavailable", "overloaded", status=503), ServiceUnavailable),
        (ServerError("internal", "boom", status=500), ServiceUnavailable),
        (ServerError("unauthenticated", "bad token", status=401), UpstreamError),
        (ServerError("invalid_argument", "bad name", status=400), UpstreamError),
        (aiohttp.ClientConnectionError("refused"), ServiceUnavailable),
        (TimeoutError(), ServiceUnavailable),
    ],
)
def test_driver_errors_become_domain_errors(exc, expected):
    _calls, make = failing(exc)
    with pytest.raises(expected):
        lk._call("op", make)


def test_a_connection_closed_while_frozen_is_retried_once():
    calls, make = failing(aiohttp.ServerDisconnectedError(), times=1)
    assert lk._call("op", make) == "ok" and calls["n"] == 2
    calls, make = failing(aiohttp.ServerDisconnectedError(), times=2)
    with pytest.raises(ServiceUnavailable):
        lk._call("op", make)
    assert calls["n"] == 2


def test_a_secret_that_is_not_the_expected_json_is_503_without_echoing_it():
    lk._parse_credentials.cache_clear()
    with pytest.raises(ServiceUnavailable) as caught:
        lk._parse_credentials("apiSecret=hunter2")
    assert "hunter2" not in str(caught.value)
    assert lk._parse_credentials('{"apiKey": "k", "apiSecret": "s"}') == ("k", "s")
