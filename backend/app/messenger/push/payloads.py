"""What a push says: title, body and data per the contract, and fitting it under provider limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

BODY_LIMIT = 200  # Unicode code points
SENDER_NAME_LIMIT = 64
ELLIPSIS = "…"
CONTENT_HIDDEN_BODY = "New message"
# "<sender> • <conversation title>" (the send statement builds the same in SQL, see outbox.py).
TITLE_SEPARATOR = " • "
# Each provider rejects payloads above 4 KiB (Web Push: plaintext ≤ 3993 bytes after encryption overhead).
PROVIDER_PAYLOAD_LIMIT = 4000


def cut(text: str, limit: int) -> str:
    """At most `limit` code points: longer text keeps `limit - 1` and gains an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    body: str
    data: dict[str, str]
    priority: str = "high"  # "high" | "normal" | "low"
    collapse_id: str | None = None  # stable across retries of one push
    badge: int | None = None  # the recipient's unread total (message and clear pushes)
    silent: bool = False  # clear on read: data only, no alert, normal priority

    def data_with_unread_total(self) -> dict[str, str]:
        """FCM and Web Push carry the badge in their data too, as a string like every value."""
        return self.data if self.badge is None else {**self.data, "unread_total": str(self.badge)}


def message_notification(
    *,
    sender_name: str,
    conversation_title: str | None,
    content: str,
    include_content: bool,
    conversation_id: str,
    message_id: str,
    sender_id: str,
) -> Notification:
    name = cut(sender_name, SENDER_NAME_LIMIT)
    return Notification(
        title=f"{name}{TITLE_SEPARATOR}{conversation_title}" if conversation_title else name,
        body=cut(content, BODY_LIMIT) if include_content else CONTENT_HIDDEN_BODY,
        data={
            "type": "message.new",
            "conversation_id": conversation_id,
            "message_id": message_id,
            "sender_id": sender_id,
        },
    )


def fit_body(
    render: Callable[[str], bytes], body: str, limit: int = PROVIDER_PAYLOAD_LIMIT
) -> bytes:
    """Render the payload, cutting the body (by code points, ellipsis kept) until it fits `limit` bytes.

    Message pushes already fit (titles and bodies are capped); this guards arbitrary
    `/internal/notify` bodies and escaping-heavy text. Binary search: O(log n) renders.
    """
    rendered = render(body)
    if len(rendered) <= limit:
        return rendered
    low, high = 0, len(body) - 1
    best = render(ELLIPSIS)
    while low <= high:
        middle = (low + high) // 2
        candidate = render(body[:middle] + ELLIPSIS)
        if len(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best
