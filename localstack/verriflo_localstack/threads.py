"""Stop LocalStack from keeping every finished helper thread, and with it the thread's stack.

LocalStack's `localstack.utils.threads.start_thread` appends each thread it starts to
`TMP_THREADS`, a list read only at shutdown (`cleanup_threads_and_processes`) and never pruned.
The Lambda service starts one such thread per invocation, to record the CloudWatch
`Invocations`/`Errors` metric (`LambdaVersionManager.invoke` in
`localstack/services/lambda_/invocation/version_manager.py`, next to its own "MAYBE reuse threads
rather than starting new threads upon every invocation"). On Python 3.12 a thread's stack was
released when the thread ended; since 3.13 the OS thread stays joinable, its stack mapped, until it
is joined or its `Thread` object is freed. So every `FuncThread` in `TMP_THREADS` pins an 8 MB stack
and its guard page: 2 memory maps per invocation, about 4 per API request (authorizer and
function), until the kernel's 65,530-map limit makes every new thread fail ("can't start new
thread") after some 15,000 requests, and only a restart helps.

The fix, installed when our executor plugin is loaded (every LocalStack we start uses it, and no
function is invoked before an executor exists): `start_thread` first drops from `TMP_THREADS` the
threads that have ended and whose shutdown handling would do nothing (no `shutdown`/`kill`, no
`on_stop` callback; stopping such a `FuncThread` only sets an event). The list keeps what the
shutdown hook needs, and an ended thread's object, with its stack, is freed when the next thread
starts. Not done by editing site-packages: LocalStack's venv is rebuilt from its pinned version.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading

from localstack.utils import threads as ls_threads

LOG = logging.getLogger(__name__)
_installed = threading.Lock()


def _is_spent(entry: object) -> bool:
    """A thread that ended, with nothing for `cleanup_threads_and_processes` to do. The list also
    holds thread pools and servers (anything with `shutdown`/`kill`); those always stay."""
    return (
        isinstance(entry, threading.Thread)
        and entry.ident is not None
        and not entry.is_alive()
        and not hasattr(entry, "shutdown")
        and not hasattr(entry, "kill")
        and getattr(entry, "on_stop", None) is None
    )


def prune_spent_threads() -> int:
    """Remove ended threads from LocalStack's shutdown list; returns how many were removed."""
    removed = 0
    for entry in list(ls_threads.TMP_THREADS):  # a snapshot: other threads append meanwhile
        if _is_spent(entry):
            with contextlib.suppress(ValueError):  # a concurrent prune took it first
                ls_threads.TMP_THREADS.remove(entry)
                removed += 1
    return removed


def install() -> None:
    """Wrap `start_thread` everywhere it is reachable; idempotent."""
    with _installed:
        original = ls_threads.start_thread
        if getattr(original, "__verriflo_pruning__", False):
            return

        @functools.wraps(original)
        def start_thread(*args, **kwargs):
            try:
                prune_spent_threads()
            except Exception:  # noqa: BLE001 - a failed prune must never stop LocalStack starting a thread
                LOG.exception("Could not prune LocalStack's finished threads")
            return original(*args, **kwargs)

        start_thread.__verriflo_pruning__ = True
        ls_threads.start_thread = start_thread
        # Modules that ran `from localstack.utils.threads import start_thread` before this (the
        # Lambda version manager, localstack.utils.common, ...) hold the original: rebind them.
        # Modules imported later pick up the wrapper from localstack.utils.threads.
        for name, module in list(sys.modules.items()):
            if name.startswith("localstack") and getattr(module, "start_thread", None) is original:
                module.start_thread = start_thread
