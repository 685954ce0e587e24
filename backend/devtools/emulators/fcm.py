"""FCM HTTP v1 emulator: Google OAuth token endpoint + ``messages:send``, plain HTTP.

The emulator owns a freshly generated service account. ``credentials_file`` is a real
service-account JSON whose ``token_uri`` points at this emulator, so google-auth (and
therefore pyfcm) performs the genuine JWT-bearer grant against it. Point a client at the
emulator by replacing ``https://fcm.googleapis.com/v1`` with :attr:`FcmEmulator.endpoint`
(pyfcm: set ``FCM_END_POINT_BASE = emu.endpoint + "/projects"`` on the instance).

Routes (all on ``http://127.0.0.1:PORT``):

* ``POST /token`` - JWT-bearer grant; returns ``{"access_token", "expires_in", ...}``.
* ``POST /v1/projects/{project}/messages:send`` - the push endpoint.
* ``/_emulator/...`` - control endpoints (see :mod:`.base`); ``control_url`` points here.

Keys for :meth:`~.base.Emulator.script` / ``always`` are ``message.token`` values.
Google-style error replies are built by :func:`error` and the helpers below it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import threading
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .base import Emulator, Reply, json_bytes

__all__ = [
    "FcmEmulator",
    "error",
    "internal",
    "invalid_argument_payload",
    "invalid_token",
    "quota_exceeded",
    "sender_id_mismatch",
    "third_party_auth_error",
    "unavailable",
    "unregistered",
]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs the assertion with this audience whatever token_uri says (checked in
# google-auth 2.62: service_account._make_authorization_grant_assertion), and Google
# accepts it, so the emulator accepts it as well as its own token_uri.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
MESSAGE_FIELDS = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "fcmOptions",
        "token",
        "topic",
        "condition",
    }
)
REQUEST_FIELDS = frozenset({"message", "validate_only", "validateOnly"})
ACCESS_TOKEN_TTL = 3600


# --------------------------------------------------------------------------- error replies
def error(
    http_status: int,
    status: str,
    message: str,
    error_code: str | None = None,
    *,
    details: list[dict[str, Any]] | None = None,
    retry_after: int | None = None,
) -> Reply:
    """A Google API error reply; ``error_code`` adds the FcmError detail (e.g. UNREGISTERED)."""
    all_details: list[dict[str, Any]] = []
    if error_code is not None:
        all_details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    all_details.extend(details or ())
    body: dict[str, Any] = {"code": http_status, "message": message, "status": status}
    if all_details:
        body["details"] = all_details
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Reply(http_status, {"error": body}, headers)


def unregistered() -> Reply:
    """404 UNREGISTERED: the app instance is gone (token must be deleted)."""
    return error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")


def invalid_token() -> Reply:
    """400 INVALID_ARGUMENT about ``message.token`` (token must be deleted)."""
    text = "The registration token is not a valid FCM registration token"
    return error(
        400,
        "INVALID_ARGUMENT",
        text,
        "INVALID_ARGUMENT",
        details=[
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": "message.token", "description": text}],
            }
        ],
    )


def invalid_argument_payload(
    field: str = "message.data", description: str = "Invalid payload"
) -> Reply:
    """400 INVALID_ARGUMENT about the payload, not the token (do not delete the token)."""
    return error(
        400,
        "INVALID_ARGUMENT",
        f"Request contains an invalid argument: {description}",
        "INVALID_ARGUMENT",
        details=[
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": field, "description": description}],
            }
        ],
    )


def sender_id_mismatch() -> Reply:
    """403 SENDER_ID_MISMATCH: the token belongs to another Firebase project."""
    return error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")


def quota_exceeded(retry_after: int | None = None) -> Reply:
    """429 QUOTA_EXCEEDED, optionally with a Retry-After header (seconds)."""
    return error(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests'.",
        "QUOTA_EXCEEDED",
        retry_after=retry_after,
    )


def unavailable(retry_after: int | None = None) -> Reply:
    """503 UNAVAILABLE (transient)."""
    return error(
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        "UNAVAILABLE",
        retry_after=retry_after,
    )


def internal() -> Reply:
    """500 INTERNAL (transient)."""
    return error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")


def third_party_auth_error() -> Reply:
    """401 THIRD_PARTY_AUTH_ERROR: APNs/Web Push credentials of the project are bad."""
    return error(
        401,
        "UNAUTHENTICATED",
        "Auth error from APNS or Web Push Service",
        "THIRD_PARTY_AUTH_ERROR",
    )


def _unauthenticated(reason: str) -> Reply:
    return error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
        details=[{"@type": ERROR_INFO_TYPE, "reason": reason, "domain": "googleapis.com"}],
    )


# --------------------------------------------------------------------------- emulator
class FcmEmulator(Emulator):
    """FCM HTTP v1 + OAuth token endpoint, with a generated service account."""

    name = "fcm"

    def __init__(
        self,
        *,
        project_id: str = "emulator-project",
        max_received: int | None = None,
        files_dir: str | None = None,
    ) -> None:
        super().__init__(max_received=max_received, files_dir=files_dir)
        self.project_id = project_id
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._key.public_key()
        self.credentials_file = os.path.join(self._tmpdir, "service-account.json")
        self.token_uri = ""
        self.endpoint = ""
        #: Number of POST /token requests (good or bad).
        self.token_requests = 0
        self._tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._expired: set[str] = set()
        self._token_lock = threading.Lock()  # expire_access_tokens() runs on the test thread
        self._assertions: dict[str, dict[str, Any] | str] = {}  # jwt -> claims | error
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        # Further Firebase projects served by this one server (push apps): each has its own
        # service account, and an access token only sends to the project it was issued for.
        self._accounts: dict[str, tuple[Any, str, str]] = {}  # email -> (public key, kid, project)
        self._token_projects: dict[str, str] = {}

    # ----------------------------------------------------------------- lifecycle
    async def _start_servers(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        app.add_routes(self.control_routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        base = f"http://127.0.0.1:{self.port}"
        self.token_uri = f"{base}/token"
        self.endpoint = f"{base}/v1"
        self._write_credentials()

    async def _start_control(self) -> None:
        """Control routes live on the (plain-HTTP) main server; no extra port needed."""
        self.control_url = f"http://127.0.0.1:{self.port}/_emulator"

    async def _stop_servers(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _write_credentials(self) -> None:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + self.client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }
        tmp = self.credentials_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=2)
        os.replace(tmp, self.credentials_file)

    # ----------------------------------------------------------------- public API
    @property
    def service_account_info(self) -> dict[str, Any]:
        """The service-account JSON as a dict (for google-auth's from_service_account_info)."""
        with open(self.credentials_file) as f:
            return json.load(f)

    def add_project(self, project_id: str) -> str:
        """Serve another Firebase project; returns its service-account file (call after start)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"push@{project_id}.iam.gserviceaccount.com"
        key_id = secrets.token_hex(20)
        self._accounts[email] = (key.public_key(), key_id, project_id)
        path = os.path.join(self._tmpdir, f"service-account-{project_id}.json")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            **self.service_account_info,
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
        }
        with open(path, "w") as f:
            json.dump(info, f)
        return path

    def expire_access_tokens(self) -> None:
        """Invalidate every issued access token: next sends get 401 ACCESS_TOKEN_EXPIRED."""
        with self._token_lock:
            self._expired.update(self._tokens)
            self._tokens.clear()

    def reset(self) -> None:
        super().reset()
        self.token_requests = 0

    # ----------------------------------------------------------------- /token
    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return _grant_error("unsupported_grant_type", "Invalid grant_type.", 400)
        assertion = form.get("assertion")
        if not isinstance(assertion, str) or not assertion:
            return _grant_error("invalid_request", "Missing required parameter: assertion")
        claims = self._assertions.get(assertion)
        if claims is None:
            claims = self._verify_assertion(assertion)
            if len(self._assertions) > 10_000:
                self._assertions.clear()
            self._assertions[assertion] = claims
        if isinstance(claims, str):
            return _grant_error("invalid_grant", claims)
        now = time.time()
        if claims["exp"] <= now:
            return _grant_error("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        if claims["iat"] > now + 300:
            return _grant_error("invalid_grant", "Invalid JWT: iat is in the future")
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        with self._token_lock:
            self._tokens[token] = now + ACCESS_TOKEN_TTL
            self._token_projects[token] = claims.get("_project", self.project_id)
        return web.json_response(
            {"access_token": token, "expires_in": ACCESS_TOKEN_TTL, "token_type": "Bearer"}
        )

    def _verify_assertion(self, assertion: str) -> dict[str, Any] | str:
        """Claims of a correctly signed assertion, or an error description."""
        public_key, key_id, issuer, project = (
            self._public_key,
            self.private_key_id,
            self.client_email,
            self.project_id,
        )
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            if unverified.get("iss") in self._accounts:
                issuer = unverified["iss"]
                public_key, key_id, project = self._accounts[issuer]
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=[self.token_uri, GOOGLE_TOKEN_AUDIENCE],
                issuer=issuer,
                options={"require": ["exp", "iat", "iss", "aud"], "verify_exp": False},
            )
            claims["_project"] = project
        except jwt.PyJWTError as exc:
            return f"Invalid JWT Signature or claims: {exc}"
        if header.get("kid") not in (None, key_id):
            return "Invalid JWT Signature: unknown key id"
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return f"Invalid OAuth scope or ID token audience provided: need {FCM_SCOPE}"
        if claims["exp"] - claims["iat"] > 3600 + 60:
            return "Invalid JWT: Token must be a short-lived token (60 minutes)"
        return claims

    # ----------------------------------------------------------------- messages:send
    async def _send(self, request: web.Request) -> web.Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        message: dict[str, Any] = {}
        body: Any = None
        try:
            body = json.loads(raw)
            if isinstance(body, dict) and isinstance(body.get("message"), dict):
                message = body["message"]
        except ValueError:
            pass
        token = message.get("token")
        key = token if isinstance(token, str) else ""

        reply = self._check_auth(headers.get("authorization", ""))
        project = request.match_info["project"]
        headers[":project"] = project
        token_project = self._token_projects.get(
            headers.get("authorization", "").partition(" ")[2].strip(), self.project_id
        )
        if reply is None and project != token_project:
            reply = error(
                403,
                "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/"
                f"{request.match_info['project']}' (or it may not exist).",
            )
        if reply is None:
            reply = _validate(body)
        if reply is None:
            reply = self._pick(key)
        if reply is None:
            if body.get("validate_only") or body.get("validateOnly"):
                name = f"projects/{self.project_id}/messages/fake_message_id"
            else:
                name = f"projects/{self.project_id}/messages/0:{next(self._ids)}"
            reply = Reply(200, {"name": name})
        self._record(key, headers, message, reply.status)
        return web.Response(
            status=reply.status,
            body=json_bytes(reply.body),
            headers=reply.headers,
            content_type="application/json",
        )

    def _check_auth(self, authorization: str) -> Reply | None:
        if not authorization:
            return _unauthenticated("CREDENTIALS_MISSING")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return _unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        token = token.strip()
        expiry = self._tokens.get(token)
        if expiry is not None and expiry > time.time():
            return None
        if expiry is not None or token in self._expired:
            return _unauthenticated("ACCESS_TOKEN_EXPIRED")
        return _unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")


def _grant_error(code: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


def _validate(body: Any) -> Reply | None:
    """Request-shape checks FCM performs before looking at the token."""
    if not isinstance(body, dict):
        return invalid_argument_payload("", "Invalid JSON payload received.")
    unknown = set(body) - REQUEST_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        return invalid_argument_payload(
            name, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
        )
    message = body.get("message")
    if not isinstance(message, dict):
        return invalid_argument_payload("message", "Missing message.")
    unknown = set(message) - MESSAGE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        return invalid_argument_payload(
            f"message.{name}",
            f"Invalid JSON payload received. Unknown name \"{name}\" at 'message': "
            "Cannot find field.",
        )
    token = message.get("token")
    if not isinstance(token, str) or not token:
        return invalid_argument_payload(
            "message.token", "Recipient of the message is not set (message.token is required)."
        )
    data = message.get("data")
    if data is not None:
        if not isinstance(data, dict):
            return invalid_argument_payload("message.data", "Invalid value at 'message.data'.")
        for index, (name, value) in enumerate(data.items()):
            if not isinstance(value, str):
                return invalid_argument_payload(
                    f"message.data[{index}].value",
                    f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), "
                    f"{json.dumps(value)} (key {name!r})",
                )
    return None
