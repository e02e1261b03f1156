"""The streamed routes' Lambda entry point keeps working after other code in the process ran
`asyncio.run()` (which leaves the thread without a current event loop, where Mangum needs one)."""

from __future__ import annotations

import asyncio
import warnings

from verriflo.asgi import _ensure_event_loop


def test_a_current_loop_is_set_again_after_asyncio_run():
    asyncio.run(asyncio.sleep(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
            had_loop = True
        except RuntimeError:
            had_loop = False
    assert not had_loop, "asyncio.run() no longer unsets the loop: this test lost its premise"

    _ensure_event_loop()

    loop = asyncio.get_event_loop()
    assert not loop.is_closed()
    assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
    before = loop
    _ensure_event_loop()
    assert asyncio.get_event_loop() is before
