"""Authentication: host-issued JWTs for users, an API key for server-to-server calls."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Header, HTTPException, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.app.config import Settings
from backend.app.runtime import RuntimeDep, SettingsDep, runtime_of

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: str
    name: str | None
    roles: frozenset[str]
    # The `email` claim when it holds a plausible address; where email goes when the user set none.
    email: str | None = None
    # The token's `exp` (epoch seconds): a WebSocket is closed once it passes (plus leeway).
    expires_at: float | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class InvalidToken(Exception):
    pass


# A client sends many requests with one token: verifying it again each time was ~7 % of a
# send's CPU. Only verified tokens are kept, keyed with everything the verdict depends on.
VERIFIED_TOKENS_KEPT = 4096
_verified: dict[tuple[str, ...], CurrentUser] = {}


def decode_token(token: str, settings: Settings) -> CurrentUser:
    """Verify a JWT with the algorithm pinned to the configured one (`none` and others are refused).

    A token verified before is only checked for expiry again: `nbf` and `iat` passed once stay
    passed, and nothing else in a verdict changes with time.
    """
    key = (
        token,
        settings.jwt_secret,
        settings.jwt_algorithm,
        str(settings.jwt_audience),
        str(settings.jwt_issuer),
        str(settings.jwt_leeway_seconds),
    )
    user = _verified.get(key)
    if user is None:
        user = _verify(token, settings)
        if len(_verified) >= VERIFIED_TOKENS_KEPT:
            del _verified[next(iter(_verified))]  # the oldest entry
        _verified[key] = user
    # PyJWT's own rule: expired once exp <= now - leeway.
    if user.expires_at is not None and user.expires_at <= time.time() - settings.jwt_leeway_seconds:
        _verified.pop(key, None)
        raise InvalidToken("Signature has expired")
    return user


def _verify(token: str, settings: Settings) -> CurrentUser:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "sub"], "verify_aud": settings.jwt_audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 64:
        raise InvalidToken("sub must be a string of 1-64 characters")
    name = claims.get("name")
    roles = claims.get("roles") or []
    if not isinstance(roles, list):
        raise InvalidToken("roles must be a list of strings")
    return CurrentUser(
        id=sub,
        name=name if isinstance(name, str) and name.strip() else None,
        roles=frozenset(r for r in roles if isinstance(r, str)),
        email=_email_claim(claims.get("email")),
        expires_at=float(claims["exp"]) if isinstance(claims.get("exp"), int | float) else None,
    )


def _email_claim(value: object) -> str | None:
    """A malformed claim is ignored (the host's token is still valid), never stored."""
    from backend.app.messenger.preferences.schemas import valid_email

    if not isinstance(value, str):
        return None
    try:
        return valid_email(value)
    except ValueError:
        return None


async def current_user(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    user = _authenticate(runtime.settings, credentials)
    if user.email is not None:
        from backend.app.messenger.preferences.claims import remember_email_claim

        await remember_email_claim(runtime, user_id=user.id, email=user.email)
    return user


def _authenticate(
    settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> CurrentUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return decode_token(credentials.credentials, settings)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"Invalid token: {exc}",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


def websocket_user(websocket: WebSocket) -> CurrentUser | None:
    """The WebSocket's user from `?token=<JWT>`, or None (the endpoint then closes with 4401).

    A separate dependency because browsers cannot set headers on a WebSocket; a host
    application that embeds the module overrides it (and `current_user`) with its own."""
    token = websocket.query_params.get("token")
    if not token:
        return None
    try:
        return decode_token(token, runtime_of(websocket).settings)
    except InvalidToken:
        return None


async def admin_user(user: Annotated[CurrentUser, Depends(current_user)]) -> CurrentUser:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Admin role required")
    return user


async def service_caller(
    settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    """Server-to-server calls: constant-time compare; an unset key on the server refuses everyone."""
    expected = settings.service_api_key
    # Header values arrive decoded as Latin-1; compare bytes so any byte is just a wrong key.
    if (
        not expected
        or not x_api_key
        or not hmac.compare_digest(x_api_key.encode("latin-1", "replace"), expected.encode())
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Missing or invalid X-API-Key")


def mint_token(
    settings: Settings,
    *,
    user_id: str,
    name: str | None = None,
    admin: bool = False,
    ttl_seconds: int = 86400,
    email: str | None = None,
) -> str:
    """Development tokens (`messenger token`) and tests: what the host application would issue."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if name:
        claims["name"] = name
    if admin:
        claims["roles"] = ["admin"]
    if email:
        claims["email"] = email
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]
WebSocketUserDep = Annotated[CurrentUser | None, Depends(websocket_user)]
AdminUserDep = Annotated[CurrentUser, Depends(admin_user)]
