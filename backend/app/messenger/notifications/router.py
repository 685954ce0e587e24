from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    Header,
    HTTPException,
    Query,
    Response,
    status,
)

from backend.app.auth import AdminUserDep, CurrentUserDep, service_caller
from backend.app.db import SessionDep
from backend.app.errors import not_found, unprocessable
from backend.app.messenger.notifications import history, inbox, loop, service
from backend.app.messenger.notifications.schemas import (
    Accepted,
    AdminNotificationPage,
    Cancelled,
    CreateNotificationRequest,
    InboxEntryOut,
    InboxPage,
    ReadAll,
)

router = APIRouter(tags=["notifications"])

IDEMPOTENCY_KEY_MAX = 255


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not value.isprintable() or not value.isascii():
        raise unprocessable(
            ("header", "Idempotency-Key"), "must be 1-255 printable ASCII characters"
        )
    return value


@router.post(
    "/internal/notifications",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(service_caller)],
    responses={200: {"model": Accepted, "description": "Idempotency-Key repeat: the first answer"}},
)
async def create_notification(
    body: CreateNotificationRequest,
    session: SessionDep,
    response: Response,
    background: BackgroundTasks,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Accepted:
    """Queue (or schedule) a notification; recipients are materialised in the background."""
    acceptance = await service.accept(
        session, request=body, idempotency_key=_idempotency_key(idempotency_key)
    )
    if not acceptance.created:
        response.status_code = status.HTTP_200_OK
    elif acceptance.status == "queued":
        background.add_task(loop.kick)  # runs after the commit: wake this process's loop
    return Accepted(notification_id=acceptance.notification_id, status=acceptance.status)  # type: ignore[arg-type]


@router.delete(
    "/internal/notifications/{notification_id}",
    response_model=Cancelled,
    dependencies=[Depends(service_caller)],
)
async def cancel_notification(notification_id: str, session: SessionDep) -> Cancelled:
    try:
        parsed = uuid.UUID(notification_id)
    except ValueError:
        raise not_found("Notification") from None
    outcome = await service.cancel(session, notification_id=parsed)
    if outcome is service.CancelOutcome.NOT_FOUND:
        raise not_found("Notification")
    if outcome is service.CancelOutcome.ALREADY_STARTED:
        raise HTTPException(status.HTTP_409_CONFLICT, "Notification has already started sending")
    return Cancelled(notification_id=parsed)


@router.get("/notifications", response_model=InboxPage)
async def list_inbox(
    user: CurrentUserDep,
    session: SessionDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> InboxPage:
    before_id = None
    if cursor is not None:
        try:
            before_id = inbox.decode_cursor(cursor)
        except ValueError:
            raise unprocessable(("query", "cursor"), "invalid cursor") from None
    entries, next_id = await inbox.list_entries(
        session, user_id=user.id, unread_only=unread_only, limit=limit, before_id=before_id
    )
    return InboxPage(
        notifications=[InboxEntryOut.model_validate(e) for e in entries],
        next_cursor=inbox.encode_cursor(next_id) if next_id is not None else None,
    )


@router.post("/notifications/read-all", response_model=ReadAll)
async def read_all(user: CurrentUserDep, session: SessionDep) -> ReadAll:
    return ReadAll(updated=await inbox.mark_all_read(session, user_id=user.id))


@router.post("/notifications/{entry_id}/read", response_model=InboxEntryOut)
async def read_one(entry_id: str, user: CurrentUserDep, session: SessionDep) -> InboxEntryOut:
    """Unknown, malformed and other users' entries are one answer: 404."""
    if not entry_id.isascii() or not entry_id.isdigit() or int(entry_id) >= 2**63:
        raise not_found("Notification")
    entry = await inbox.mark_read(session, user_id=user.id, entry_id=int(entry_id))
    if entry is None:
        raise not_found("Notification")
    return InboxEntryOut.model_validate(entry)


@router.get("/admin/notifications", response_model=AdminNotificationPage)
async def admin_history(
    admin: AdminUserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> AdminNotificationPage:
    before = None
    if cursor is not None:
        try:
            before = history.decode_cursor(cursor)
        except ValueError:
            raise unprocessable(("query", "cursor"), "invalid cursor") from None
    items, following = await history.list_history(session, limit=limit, before=before)
    return AdminNotificationPage.model_validate(
        {
            "notifications": items,
            "next_cursor": history.encode_cursor(*following) if following else None,
        }
    )
