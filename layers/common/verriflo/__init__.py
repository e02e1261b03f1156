"""Verriflo's common layer: settings, observability, errors, stores, auth, limits, ledger, events.

Every function imports what it needs from here; nothing in this package reads the environment or
opens a connection at import time.
"""
