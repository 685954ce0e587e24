"""Security headers: a strict Content-Security-Policy for the pages this service serves
(the web client and the API docs) and nosniff / Referrer-Policy on every HTTP answer.

Pure ASGI (not BaseHTTPMiddleware) so WebSockets and streamed bodies pass untouched."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The client: only its own scripts, styles, workers and API (same-origin ws/wss included:
# CSP Level 3 `'self'` matches the WebSocket of the same host). No inline anything.
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The docs: scripts are still 'self' only (the init scripts are files, not inline), but
# Swagger UI and ReDoc render with React / styled-components, which set inline styles, and
# ReDoc runs its search index in a blob: worker. Nothing is loaded from another origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc", "/static/vendor/")


def policy_for(path: str) -> str | None:
    if path == "/app" or path.startswith("/app/"):
        return APP_CSP
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    return None


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = policy_for(scope.get("root_path", "") + scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if csp is not None:
                    extra += [
                        (b"content-security-policy", csp.encode()),
                        (b"x-frame-options", b"DENY"),
                        (b"cross-origin-opener-policy", b"same-origin"),
                    ]
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
