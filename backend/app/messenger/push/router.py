from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from backend.app.auth import AdminUserDep, CurrentUserDep, service_caller
from backend.app.db import SessionDep
from backend.app.edge.fields import CheckedDatetime
from backend.app.errors import unprocessable
from backend.app.messenger.devices.service import active_devices_by_app
from backend.app.messenger.push.delivery import DeviceReport
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.schemas import (
    DevicePushResult,
    NotifyRequest,
    PushAppOut,
    PushApps,
    PushResults,
    PushStats,
    StatsBucket,
)
from backend.app.messenger.push.service import delivery_buckets
from backend.app.messenger.push.vocabulary import PushKind
from backend.app.ratelimit import Limit, enforce_rate_limit, user_key
from backend.app.runtime import RuntimeDep

router = APIRouter(tags=["push"])

TEST_NOTIFICATION = Notification(
    title="Test notification",
    body="Push notifications are working on this device.",
    data={"type": "test"},
)


def _results(reports: list[DeviceReport]) -> PushResults:
    return PushResults(
        results=[
            DevicePushResult(
                device_token_id=r.device_token_id,
                provider=r.provider,  # type: ignore[arg-type]
                outcome=r.outcome.value,
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
    reports = await rt.push.push_to_user_now(
        user_id=user.id, notification=TEST_NOTIFICATION, kind=PushKind.TEST
    )
    return _results(reports)


@router.post("/internal/notify", response_model=PushResults, dependencies=[Depends(service_caller)])
async def internal_notify(body: NotifyRequest, rt: RuntimeDep) -> PushResults:
    """Server-to-server: push to all of a user's active devices regardless of presence."""
    notification = Notification(
        title=body.title, body=body.body, data=body.data or {}, priority=body.priority
    )
    reports = await rt.push.push_to_user_now(
        user_id=body.user_id, notification=notification, kind=PushKind.NOTIFICATION
    )
    return _results(reports)


@router.get("/admin/push/apps", response_model=PushApps)
async def admin_push_apps(_: AdminUserDep, rt: RuntimeDep, session: SessionDep) -> PushApps:
    """One entry per (app, provider): configured or not, its circuit and active devices."""
    counts = await active_devices_by_app(session)
    return PushApps(
        apps=[
            PushAppOut(
                app_id=channel.app.app_id,
                provider=channel.app.provider.value,
                configured=channel.configured,
                circuit=channel.breaker.state.value,
                last_error=channel.breaker.last_error,
                devices_active=counts.get((channel.app.provider.value, channel.app.app_id), 0),
            )
            for channel in rt.push.registry.channels.values()
        ]
    )


# At most this many buckets per request (hourly: about 41 days; daily: about 2.7 years).
MAX_STATS_BUCKETS = 1000
DEFAULT_STATS_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


@router.get("/admin/push/stats", response_model=PushStats)
async def admin_push_stats(
    _: AdminUserDep,
    session: SessionDep,
    since: Annotated[CheckedDatetime | None, Query()] = None,
    until: Annotated[CheckedDatetime | None, Query()] = None,
    bucket: Literal["hour", "day"] = "hour",
) -> PushStats:
    """Finished device pushes (message and notification alike) per time bucket (UTC), per
    provider and outcome. Defaults: the last 24 hours hourly, or the last 30 days daily."""
    end = until or datetime.now(UTC)
    start = since or end - DEFAULT_STATS_SPAN[bucket]
    if start > end:
        raise unprocessable(("query", "since"), "since must not be after until")
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    if (end - start) / step > MAX_STATS_BUCKETS:
        raise unprocessable(("query", "until"), f"at most {MAX_STATS_BUCKETS} buckets per request")
    buckets = await delivery_buckets(session, since=start, until=end, bucket=bucket)
    return PushStats(buckets=[StatsBucket(**b) for b in buckets])
