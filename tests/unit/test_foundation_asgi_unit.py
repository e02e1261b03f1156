"""The streamed routes' Lambda entry point keeps working after other code in the process ran
`asyncio.run()` (which leaves the thread without a current event loop, where Mangum needs one), and
setting the loop raises no DeprecationWarning (`asyncio.get_event_loop()` with none set does)."""

from __future__ import annotations

import asyncio
import threading
import warnings

from verriflo.asgi import _ensure_event_loop


def _current_loop_or_none() -> asyncio.AbstractEventLoop | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None


def test_a_current_loop_is_set_again_after_asyncio_run():
    asyncio.run(asyncio.sleep(0))
    assert _current_loop_or_none() is None, (
        "asyncio.run() no longer unsets the loop: this test lost its premise"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        _ensure_event_loop()
        loop = asyncio.get_event_loop()
    assert not loop.is_closed()
    assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
    before = loop
    _ensure_event_loop()
    assert asyncio.get_event_loop() is before


def test_a_thread_that_never_had_a_loop_gets_one_without_a_deprecation_warning():
    seen: dict[str, object] = {}

    def run() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                _ensure_event_loop()
                loop = asyncio.get_event_loop()
                seen["result"] = loop.run_until_complete(asyncio.sleep(0, result="ok"))
                asyncio.run(asyncio.sleep(0))  # unsets it again
                _ensure_event_loop()
                seen["same"] = asyncio.get_event_loop() is loop
        except Exception as exc:  # noqa: BLE001 - reported to the test thread below
            seen["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    assert "error" not in seen, seen.get("error")
    assert seen == {"result": "ok", "same": True}


def test_a_closed_loop_is_replaced():
    _ensure_event_loop()
    first = asyncio.get_event_loop()
    first.close()
    _ensure_event_loop()
    second = asyncio.get_event_loop()
    assert second is not first and not second.is_closed()
