"""Who may call the API: host-issued JWTs, verified with the configured secret and algorithm."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest

import backend.app.auth
from backend.app.vapid import b64url
from backend.tests.conftest import API, TEST_JWT_SECRET, ServerFactory


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(secret: str = TEST_JWT_SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def status_with(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/devices", headers=headers)).status_code


async def test_a_valid_token_is_accepted(client: httpx.AsyncClient) -> None:
    assert await status_with(client, auth(token())) == 200


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/devices")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_non_bearer_authorization_scheme_is_401(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    assert await status_with(client, headers) == 401


async def test_a_token_that_is_not_a_jwt_is_401(client: httpx.AsyncClient) -> None:
    assert await status_with(client, auth("not-a-jwt")) == 401


async def test_an_expired_token_is_401(client: httpx.AsyncClient) -> None:
    expired = token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    assert await status_with(client, auth(expired)) == 401


async def test_a_token_accepted_before_is_401_once_it_expires(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = token(exp=int(time.time()) + 60)
    assert await status_with(client, auth(raw)) == 200
    later = time.time() + 120
    monkeypatch.setattr(backend.app.auth, "time", SimpleNamespace(time=lambda: later))
    assert await status_with(client, auth(raw)) == 401


async def test_a_token_accepted_under_one_secret_is_401_under_another(
    start_server: ServerFactory,
) -> None:
    raw = token()
    other = await start_server(jwt_secret="another-secret-0123456789abcdef0123456789")
    async with httpx.AsyncClient(base_url=other.url + API) as client:
        assert await status_with(client, auth(raw)) == 401
    first = await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as client:
        assert await status_with(client, auth(raw)) == 200
    async with httpx.AsyncClient(base_url=other.url + API) as client:
        assert await status_with(client, auth(raw)) == 401


async def test_a_token_without_exp_is_401(client: httpx.AsyncClient) -> None:
    assert await status_with(client, auth(token(exp=None))) == 401


async def test_a_token_signed_with_another_secret_is_401(client: httpx.AsyncClient) -> None:
    forged = token(secret="another-secret-0123456789abcdef0123456789")
    assert await status_with(client, auth(forged)) == 401


async def test_an_unsigned_token_with_alg_none_is_401(client: httpx.AsyncClient) -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims(roles=["admin"])).encode())
    assert await status_with(client, auth(f"{header}.{payload}.")) == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_a_token_signed_with_another_algorithm_than_configured_is_401(
    client: httpx.AsyncClient,
) -> None:
    hs512 = token(algorithm="HS512")  # the right secret, but HS256 is configured
    assert await status_with(client, auth(hs512)) == 401


@pytest.mark.parametrize(
    "bad_claims",
    [{"sub": None}, {"sub": ""}, {"sub": "x" * 65}, {"sub": 42}, {"roles": "admin"}],
    ids=["no sub", "empty sub", "sub over 64 chars", "sub not a string", "roles not a list"],
)
async def test_a_token_with_malformed_claims_is_401(
    client: httpx.AsyncClient, bad_claims: dict[str, Any]
) -> None:
    assert await status_with(client, auth(token(**bad_claims))) == 401


async def test_a_64_character_user_id_is_accepted(client: httpx.AsyncClient) -> None:
    assert await status_with(client, auth(token(sub="x" * 64))) == 200


async def test_audience_is_checked_when_configured(start_server: ServerFactory) -> None:
    server = await start_server(jwt_audience="messenger")
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        assert await status_with(client, auth(token(aud="messenger"))) == 200
        assert await status_with(client, auth(token(aud="another-service"))) == 401
        assert await status_with(client, auth(token())) == 401


async def test_issuer_is_checked_when_configured(start_server: ServerFactory) -> None:
    server = await start_server(jwt_issuer="https://host.example")
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        assert await status_with(client, auth(token(iss="https://host.example"))) == 200
        assert await status_with(client, auth(token(iss="https://evil.example"))) == 401
        assert await status_with(client, auth(token())) == 401


async def test_audience_and_issuer_are_ignored_when_not_configured(
    client: httpx.AsyncClient,
) -> None:
    assert await status_with(client, auth(token(aud="anything", iss="anyone"))) == 200


async def test_the_configured_algorithm_is_the_only_one_accepted(
    start_server: ServerFactory,
) -> None:
    secret = "s" * 64  # HS512 wants a 64-byte key
    server = await start_server(jwt_algorithm="HS512", jwt_secret=secret)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        assert await status_with(client, auth(token(secret, algorithm="HS512"))) == 200
        assert await status_with(client, auth(token(secret, algorithm="HS256"))) == 401


async def test_the_admin_role_comes_from_the_roles_claim(client: httpx.AsyncClient) -> None:
    admin = auth(token(roles=["support", "admin"]))
    not_admin = auth(token(roles=["support"]))

    assert (await client.get("/admin/devices", headers=admin)).status_code == 200
    assert (await client.get("/admin/devices", headers=not_admin)).status_code == 403
