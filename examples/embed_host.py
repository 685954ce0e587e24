"""A host FastAPI application that embeds the messenger instead of running `messenger serve`.

The host has its own users and its own sign-in (here: opaque session keys in a dict, standing
in for the host's session store); the messenger trusts the host's identity instead of JWTs.

Run it (PostgreSQL and Redis must exist; `messenger migrate` once with the same DATABASE_URL):

    DATABASE_URL=postgresql://... REDIS_URL=redis://... uvicorn examples.embed_host:app

    curl -H 'X-Session: s-alice' localhost:8000/whoami
    curl -H 'X-Session: s-alice' localhost:8000/api/v1/messenger/conversations
    websocat 'ws://localhost:8000/api/v1/messenger/ws?session=s-alice'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, WebSocket

from backend.app.auth import CurrentUser, current_user, websocket_user
from backend.app.config import Settings
from backend.app.messenger import embed

# The host's own session store: session key -> (user id, display name, roles).
SESSIONS = {
    "s-alice": ("alice", "Alice", frozenset()),
    "s-bob": ("bob", "Bob", frozenset()),
    "s-admin": ("root", "Operator", frozenset({"admin"})),
}


def _user_for(session_key: str | None) -> CurrentUser | None:
    found = SESSIONS.get(session_key or "")
    if found is None:
        return None
    user_id, name, roles = found
    return CurrentUser(id=user_id, name=name, roles=roles)


def host_user(x_session: Annotated[str | None, Header()] = None) -> CurrentUser:
    """HTTP: the host's sign-in replaces the messenger's JWT check."""
    user = _user_for(x_session)
    if user is None:
        raise HTTPException(401, "Sign in first")
    return user


def host_websocket_user(websocket: WebSocket) -> CurrentUser | None:
    """WebSocket: browsers cannot set headers there, so the session key rides in the query
    string (a cookie works the same way). None makes the messenger close with 4401."""
    return _user_for(websocket.query_params.get("session"))


@asynccontextmanager
async def host_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The host's own startup/shutdown; the messenger's runs around it."""
    app.state.greeting = "Hello from the host"
    yield


app = FastAPI(title="Host application", lifespan=host_lifespan)


@app.get("/whoami")
def whoami(user: Annotated[CurrentUser, Depends(host_user)]) -> dict[str, str]:
    """One of the host's own routes, next to the messenger's."""
    return {"user_id": user.id, "name": user.display_name, "greeting": app.state.greeting}


embed(app, Settings())  # messenger API under /api/v1/messenger, its lifespan around the host's
app.dependency_overrides[current_user] = host_user
app.dependency_overrides[websocket_user] = host_websocket_user
