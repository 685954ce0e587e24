from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from backend.app.auth import AdminUserDep, CurrentUserDep
from backend.app.db import SessionDep
from backend.app.errors import not_found, unprocessable
from backend.app.messenger.devices import service
from backend.app.messenger.devices.models import DeviceToken
from backend.app.messenger.devices.schemas import (
    AdminDeviceList,
    AdminDeviceOut,
    DeviceList,
    DeviceOut,
    DeviceStats,
    Platform,
    Provider,
    RegisterDeviceRequest,
    RegisterDeviceResponse,
    UnregisterResponse,
    VapidPublicKey,
)
from backend.app.messenger.devices.validation import (
    TokenError,
    check_combination,
    parse_token,
    token_preview,
)
from backend.app.messenger.push.apps import WebPushCredentials
from backend.app.ratelimit import Limit, enforce_rate_limit, user_key
from backend.app.runtime import RuntimeDep

router = APIRouter(tags=["devices"])


def _device_out(device: DeviceToken) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        platform=device.platform,  # type: ignore[arg-type]
        provider=device.provider,  # type: ignore[arg-type]
        app_id=device.app_id,
        device_name=device.device_name,
        is_active=device.is_active,
        registered_at=device.created_at,
        last_used_at=device.last_used_at,
    )


@router.post(
    "/devices/register",
    response_model=RegisterDeviceResponse,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": RegisterDeviceResponse, "description": "Token already known"}},
)
async def register_device(
    body: RegisterDeviceRequest,
    rt: RuntimeDep,
    response: Response,
    user: CurrentUserDep,
    session: SessionDep,
) -> RegisterDeviceResponse:
    settings = rt.settings
    try:
        check_combination(body.provider, body.platform)
    except TokenError as exc:
        raise unprocessable(("body", "platform"), str(exc)) from exc
    app_id = body.app_id or "default"
    if not rt.push.registry.knows(body.provider, app_id):
        raise unprocessable(
            ("body", "app_id"), f"no push app '{app_id}' is configured for {body.provider}"
        )
    try:
        parsed = parse_token(body.provider, body.device_token, settings.web_push_allowlist)
    except TokenError as exc:
        raise unprocessable(("body", "device_token"), str(exc)) from exc
    await enforce_rate_limit(
        rt.redis,
        key=user_key(Limit.DEVICE_REGISTER, user.id),
        limit=settings.device_registrations_per_minute,
    )
    registration = await service.register_device(
        session,
        user_id=user.id,
        parsed=parsed,
        platform=body.platform,
        provider=body.provider,
        device_name=body.device_name,
        max_active_devices=settings.max_active_devices_per_user,
        app_id=app_id,
    )
    if not registration.created:
        response.status_code = status.HTTP_200_OK
    return RegisterDeviceResponse(
        status="registered" if registration.created else "updated",
        device_token_id=registration.device_id,
        user_id=user.id,
        platform=body.platform,
        provider=body.provider,
    )


@router.get("/devices", response_model=DeviceList)
async def list_devices(user: CurrentUserDep, session: SessionDep) -> DeviceList:
    devices = await service.list_user_devices(session, user_id=user.id)
    return DeviceList(devices=[_device_out(d) for d in devices])


@router.delete("/devices/{device_token:path}", response_model=UnregisterResponse)
async def unregister_device(
    device_token: str, user: CurrentUserDep, session: SessionDep
) -> UnregisterResponse:
    """For Web Push the path segment is the URL-encoded subscription endpoint."""
    if not await service.unregister_device(session, user_id=user.id, token=device_token):
        raise not_found("Device")
    return UnregisterResponse()


@router.get("/push/vapid-public-key", response_model=VapidPublicKey)
async def vapid_public_key(
    rt: RuntimeDep, app_id: Annotated[str, Query(max_length=64)] = "default"
) -> VapidPublicKey:
    """The VAPID public key of a Web Push app (`default` unless `app_id` names another)."""
    channel = rt.push.registry.channel("web_push", app_id)
    credentials = channel.app.credentials if channel is not None else None
    if not isinstance(credentials, WebPushCredentials):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Web Push is not configured")
    return VapidPublicKey(public_key=credentials.public_key)


@router.get("/admin/devices", response_model=AdminDeviceList)
async def admin_list_devices(
    _: AdminUserDep,
    session: SessionDep,
    user_id: str | None = None,
    platform: Platform | None = None,
    provider: Provider | None = None,
    is_active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> AdminDeviceList:
    try:
        after_id = service.decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise unprocessable(("query", "cursor"), "cursor is not one this API returned") from exc
    devices, next_id = await service.admin_list_devices(
        session,
        user_id=user_id,
        platform=platform,
        provider=provider,
        is_active=is_active,
        limit=limit,
        after_id=after_id,
    )
    return AdminDeviceList(
        devices=[
            AdminDeviceOut(
                **_device_out(d).model_dump(),
                user_id=d.user_id,
                token_preview=token_preview(d.provider, d.token),
            )
            for d in devices
        ],
        next_cursor=service.encode_cursor(next_id) if next_id is not None else None,
    )


@router.get("/admin/devices/stats", response_model=DeviceStats)
async def admin_device_stats(_: AdminUserDep, session: SessionDep) -> DeviceStats:
    return DeviceStats(**await service.device_stats(session))
