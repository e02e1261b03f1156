"""Chat history in Redis: one bounded, expiring list per (org, chatId).

Keys carry the org id, so another org's chatId names a different (empty) key. A finished exchange
is appended as one MULTI/EXEC transaction (question and answer together, trimmed and re-armed), so a
failed answer never leaves half a turn behind.

The same transaction keeps the org's chat index: a sorted set `ai:chats:{org}` (chatId by last update,
in ms) and a small hash per chat (title, preview, turns, created/updated). They expire with the chat;
index entries older than the expiry are dropped when the list is read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from verriflo.cache import redis_client, unavailable_on_failure


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a chat as kept (`created_at` an ISO 8601 stamp)."""

    role: Literal["user", "assistant"]
    text: str
    created_at: str

    def to_json(self) -> str:
        """The message as stored in the list."""
        return json.dumps(
            {"role": self.role, "text": self.text, "createdAt": self.created_at}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> StoredMessage:
        """A message read back from the list."""
        item = json.loads(raw)
        return cls(role=item["role"], text=item["text"], created_at=item.get("createdAt", ""))


@dataclass(frozen=True, slots=True)
class ChatEntry:
    """A chat of the org's index: its title (first question), the last answer's start, its turns."""

    chat_id: str
    title: str
    preview: str
    turns: int
    created_at: str
    updated_at: str


def _key(org_id: str, chat_id: str) -> str:
    return f"ai:chat:{org_id}:{chat_id}"


def _index(org_id: str) -> str:
    return f"ai:chats:{org_id}"


def _meta(org_id: str, chat_id: str) -> str:
    return f"ai:chatmeta:{org_id}:{chat_id}"


def read(org_id: str, chat_id: str) -> list[StoredMessage]:
    """The chat's messages, oldest first (empty for an unknown chat)."""
    with unavailable_on_failure():
        raw = redis_client().lrange(_key(org_id, chat_id), 0, -1)
    return [StoredMessage.from_json(item) for item in raw]


def ttl(org_id: str, chat_id: str) -> int:
    """Seconds until the chat expires (negative when it does not exist)."""
    with unavailable_on_failure():
        return int(redis_client().ttl(_key(org_id, chat_id)))


def append(
    org_id: str,
    chat_id: str,
    messages: list[StoredMessage],
    keep: int,
    ttl_s: int,
    *,
    title: str,
    preview: str,
    stamp: str,
) -> None:
    """Append messages atomically, keep the last `keep`, push the expiry out, and index the chat
    (`title` is kept from the first turn; `preview`, the turn count and `stamp` follow the last)."""
    key, meta, index = _key(org_id, chat_id), _meta(org_id, chat_id), _index(org_id)
    with unavailable_on_failure():
        pipe = redis_client().pipeline(transaction=True)
        pipe.rpush(key, *[m.to_json() for m in messages])
        pipe.ltrim(key, -keep, -1)
        pipe.expire(key, ttl_s)
        pipe.hsetnx(meta, "title", title)
        pipe.hsetnx(meta, "createdAt", stamp)
        pipe.hset(meta, mapping={"preview": preview, "updatedAt": stamp})
        pipe.hincrby(meta, "turns", 1)
        pipe.expire(meta, ttl_s)
        pipe.zadd(index, {chat_id: time.time_ns() // 1_000_000})
        pipe.expire(index, ttl_s)
        pipe.execute()


def page(
    org_id: str, limit: int, cursor: tuple[int, str] | None, ttl_s: int
) -> tuple[list[ChatEntry], tuple[int, str] | None]:
    """A page of the org's chats, most recently updated first, and the cursor of the next page.

    The cursor is (score, chatId) of the last chat shown; ties on the score are ordered by chatId
    descending, as ZREVRANGEBYSCORE returns them.
    """
    index = _index(org_id)
    client = redis_client()
    with unavailable_on_failure():
        client.zremrangebyscore(index, "-inf", f"({time.time_ns() // 1_000_000 - ttl_s * 1000}")
        if cursor is None:
            found = client.zrevrangebyscore(index, "+inf", "-inf", start=0, num=limit + 1, withscores=True)
        else:
            score, after = cursor
            ties = int(client.zcount(index, score, score))
            found = client.zrevrangebyscore(
                index, score, "-inf", start=0, num=limit + 1 + ties, withscores=True
            )
            found = [(m, s) for m, s in found if not (int(s) == score and _text(m) >= after)]
        found = found[: limit + 1]
        pipe = client.pipeline(transaction=False)
        for member, _ in found[:limit]:
            pipe.hgetall(_meta(org_id, _text(member)))
        metas = pipe.execute()
    rows = []
    for (member, _score), meta in zip(found[:limit], metas, strict=True):
        if not meta:  # expired or deleted between the index read and this one
            continue
        row = {_text(k): _text(v) for k, v in meta.items()}
        rows.append(
            ChatEntry(
                chat_id=_text(member),
                title=row.get("title", ""),
                preview=row.get("preview", ""),
                turns=int(row.get("turns", 0)),
                created_at=row.get("createdAt") or row["updatedAt"],
                updated_at=row["updatedAt"],
            )
        )
    more = len(found) > limit
    last = found[limit - 1] if more else None
    return rows, ((int(last[1]), _text(last[0])) if last else None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def delete(org_id: str, chat_id: str) -> bool:
    """Delete the chat; False when there was none."""
    with unavailable_on_failure():
        pipe = redis_client().pipeline(transaction=True)
        pipe.delete(_key(org_id, chat_id))
        pipe.delete(_meta(org_id, chat_id))
        pipe.zrem(_index(org_id), chat_id)
        return bool(pipe.execute()[0])
