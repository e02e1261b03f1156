"""The org's stored chats: list them a page at a time, read one, forget one (history in Redis)."""

from __future__ import annotations

import re
import uuid

from verriflo.auth import OrgContext
from verriflo.errors import NotFound, ValidationFailed
from verriflo_ai.settings import ai_settings

from ai_agent import history
from ai_agent.models import ID_PATTERN, ChatDeleted, ChatHistory, ChatList, ChatMessage, ChatSummary


def _check_chat_id(chat_id: str) -> None:
    if not re.fullmatch(ID_PATTERN, chat_id):
        raise ValidationFailed("chatId may hold letters, digits, '-' and '_' (at most 100).")


def new_chat_id() -> str:
    """The id of a chat started without one (unguessable, so another caller cannot read it by chance)."""
    return f"chat_{uuid.uuid4().hex}"


def shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


_CURSOR = re.compile(r"^(\d{1,16})\.([A-Za-z0-9_-]{1,100})$")


def list_chats(org: OrgContext, limit: int, cursor: str | None) -> ChatList:
    """The org's chats that have not expired, most recently updated first, a page at a time."""
    after = None
    if cursor is not None:
        found = _CURSOR.match(cursor)
        if not found:
            raise ValidationFailed("cursor must be the nextCursor of an earlier page.")
        after = (int(found.group(1)), found.group(2))
    rows, following = history.page(org.org_id, limit, after, ai_settings().history_ttl_s)
    return ChatList(
        items=[
            ChatSummary(
                chat_id=r.chat_id,
                title=r.title,
                preview=r.preview,
                turns=r.turns,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ],
        next_cursor=f"{following[0]}.{following[1]}" if following else None,
    )


def read_chat(org: OrgContext, chat_id: str) -> ChatHistory:
    """A chat of the org; another org's chatId is NotFound."""
    _check_chat_id(chat_id)
    messages = history.read(org.org_id, chat_id)
    if not messages:
        raise NotFound(f"Chat '{chat_id}' was not found.")
    return ChatHistory(
        chat_id=chat_id,
        messages=[ChatMessage(role=m.role, text=m.text, created_at=m.created_at) for m in messages],
        expires_in=max(history.ttl(org.org_id, chat_id), 0),
    )


def delete_chat(org: OrgContext, chat_id: str) -> ChatDeleted:
    """Forget a chat of the org; another org's chatId is NotFound."""
    _check_chat_id(chat_id)
    if not history.delete(org.org_id, chat_id):
        raise NotFound(f"Chat '{chat_id}' was not found.")
    return ChatDeleted(chat_id=chat_id)
