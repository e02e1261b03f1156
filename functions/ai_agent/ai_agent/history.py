"""Chat history in Redis: one bounded, expiring list per (org, chatId).

Keys carry the org id, so another org's chatId names a different (empty) key. A finished exchange
is appended as one MULTI/EXEC transaction (question and answer together, trimmed and re-armed), so a
failed answer never leaves half a turn behind.
"""

from __future__ import annotations

import json
from typing import Any

from verriflo.cache import redis_client, unavailable_on_failure


def _key(org_id: str, chat_id: str) -> str:
    return f"ai:chat:{org_id}:{chat_id}"


def read(org_id: str, chat_id: str) -> list[dict[str, Any]]:
    """The chat's messages, oldest first (empty for an unknown chat)."""
    with unavailable_on_failure():
        raw = redis_client().lrange(_key(org_id, chat_id), 0, -1)
    return [json.loads(item) for item in raw]


def ttl(org_id: str, chat_id: str) -> int:
    """Seconds until the chat expires (negative when it does not exist)."""
    with unavailable_on_failure():
        return int(redis_client().ttl(_key(org_id, chat_id)))


def append(org_id: str, chat_id: str, messages: list[dict[str, Any]], keep: int, ttl_s: int) -> None:
    """Append messages atomically, keep the last `keep`, and push the expiry out."""
    key = _key(org_id, chat_id)
    with unavailable_on_failure():
        pipe = redis_client().pipeline(transaction=True)
        pipe.rpush(key, *[json.dumps(m, separators=(",", ":")) for m in messages])
        pipe.ltrim(key, -keep, -1)
        pipe.expire(key, ttl_s)
        pipe.execute()


def delete(org_id: str, chat_id: str) -> bool:
    """Delete the chat; False when there was none."""
    with unavailable_on_failure():
        return bool(redis_client().delete(_key(org_id, chat_id)))
