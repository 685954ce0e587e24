from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.app.auth import CurrentUserDep, service_caller
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.schemas import DevicePushResult, NotifyRequest, PushResults
from backend.app.ratelimit import Limit, enforce_rate_limit, user_key
from backend.app.runtime import RuntimeDep

router = APIRouter(tags=["push"])

TEST_NOTIFICATION = Notification(
    title="Test notification",
    body="Push notifications are working on this device.",
    data={"type": "test"},
)


def _results(reports: list) -> PushResults:
    return PushResults(
        results=[
            DevicePushResult(
                device_token_id=r.device_token_id, provider=r.provider, outcome=r.outcome
            )
            for r in reports
        ]
    )


@router.post(
    "/devices/test",
    response_model=PushResults,
    responses={429: {"description": "More than 6 test pushes in a minute"}},
)
async def send_test_push(rt: RuntimeDep, user: CurrentUserDep) -> PushResults:
    """Push to every active device of the caller now, whether online or not (6 per minute)."""
    await enforce_rate_limit(
        rt.redis,
        key=user_key(Limit.DEVICE_TEST, user.id),
        limit=rt.settings.device_tests_per_minute,
    )
    reports = await rt.push.push_to_user_now(user_id=user.id, notification=TEST_NOTIFICATION)
    return _results(reports)


@router.post("/internal/notify", response_model=PushResults, dependencies=[Depends(service_caller)])
async def internal_notify(body: NotifyRequest, rt: RuntimeDep) -> PushResults:
    """Server-to-server: push to all of a user's active devices regardless of presence."""
    notification = Notification(
        title=body.title, body=body.body, data=body.data or {}, priority=body.priority
    )
    reports = await rt.push.push_to_user_now(user_id=body.user_id, notification=notification)
    return _results(reports)
