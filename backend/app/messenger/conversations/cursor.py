"""The opaque `cursor` of `GET /conversations`: the (activity, id) of the last row served.

Keyset pagination: the next page starts strictly after that pair in the list's order
(activity descending, id descending), so rows inserted meanwhile neither repeat nor shift
the pages. Clients must treat the value as opaque; anything we did not issue is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ConversationCursor:
    activity: datetime
    id: uuid.UUID


def encode_cursor(cursor: ConversationCursor) -> str:
    raw = json.dumps([cursor.activity.isoformat(), str(cursor.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> ConversationCursor:
    if len(value) > 200:
        raise InvalidCursor("cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        activity, conversation_id = json.loads(raw)
        when = datetime.fromisoformat(activity)
        if when.tzinfo is None:
            raise InvalidCursor("cursor is not one this server issued")
        return ConversationCursor(activity=when, id=uuid.UUID(conversation_id))
    except InvalidCursor:
        raise
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this server issued") from exc
