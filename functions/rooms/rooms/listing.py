"""The org's rooms, a page at a time (`GET /v1/rooms`), with what a dashboard shows of each."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from verriflo.auth import OrgContext
from verriflo.errors import ValidationFailed

from rooms import lifecycle, records, store
from rooms.models import RoomList, RoomListItem, RoomListQuery

_STORED_STATUS = {"live": "open", "finished": "ended"}


def _cursor(room: records.Room) -> str:
    raw = json.dumps({"t": room.created_at.isoformat(), "k": room.key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    """The (createdAt, key) a cursor pages past; anything we did not issue is a 400."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, key = datetime.fromisoformat(raw["t"]), raw["k"]
        if not isinstance(key, str) or at.tzinfo is None:
            raise ValueError(key)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValidationFailed("Invalid value for 'cursor': pass the nextCursor of a previous page.") from exc
    return at, key


def list_rooms(org: OrgContext, **filters: Any) -> RoomList:
    """A page of the org's rooms, newest first, with what a dashboard shows of each: four queries
    whatever the page size (rooms, sessions, recordings, ledger). `filters`: RoomListQuery's fields."""
    try:
        query = RoomListQuery(**filters)
    except PydanticValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValidationFailed(f"Invalid room listing: {reason}.") from exc
    after = _after(query.cursor) if query.cursor else None
    found = store.list_rooms(
        org.org_id,
        status=_STORED_STATUS[query.status] if query.status else None,
        created_from=query.start,
        created_to=query.end,
        after=after,
        limit=query.limit + 1,
    )
    page, more = found[: query.limit], len(found) > query.limit
    ids = [r.room_id for r in page]
    tallies = store.tallies(org.org_id, ids)
    credits = store.room_credits_milli(org.org_id, ids)
    items = []
    for room in page:
        tally = tallies[room.room_id]
        total, by_service = lifecycle.credits(credits[room.room_id])
        items.append(
            RoomListItem(
                room_id=room.room_id,
                sid=room.sid,
                title=room.title,
                status="finished" if room.is_ended else "live",
                created_at=room.created_at,
                started_at=room.started_at,
                ended_at=room.ended_at,
                participants_now=0 if room.is_ended else tally.participants_now,
                total_participants=tally.participants_total,
                recordings=tally.recordings,
                total_credits=total,
                credits_by_service=by_service,
            )
        )
    return RoomList(rooms=items, next_cursor=_cursor(page[-1]) if more else None)
