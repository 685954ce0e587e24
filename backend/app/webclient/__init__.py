"""The browser-facing surface: the web client at `/app/`, offline API docs at `/docs` and
`/redoc`, and the security headers that go with them. No build step: the files under
`static/` are served as they are, third-party browser code is vendored under `vendor/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backend.app.webclient.docs import install_docs
from backend.app.webclient.headers import SecurityHeadersMiddleware

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = Path(__file__).parent / "vendor"


def install_web(app: FastAPI, *, openapi_url: str = "/openapi.json", docs: bool = True) -> None:
    """Mount the client (and, unless the host has its own, the docs) and the security headers."""
    app.mount("/app", StaticFiles(directory=STATIC_DIR, html=True), name="webclient")
    if docs:
        app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
        install_docs(app, openapi_url=openapi_url)
    app.add_middleware(SecurityHeadersMiddleware)


__all__ = ["STATIC_DIR", "VENDOR_DIR", "install_web"]
