"""The browser-facing HTTP surface without a browser: /app/ and its security headers, the
offline API docs, and CORS."""

from __future__ import annotations

import re

import httpx
import pytest

from backend.app.webclient import STATIC_DIR, VENDOR_DIR
from backend.tests.conftest import API, LiveServer, ServerFactory, bearer


async def get(server: LiveServer, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get(path, **kwargs)


async def test_app_is_served_with_a_strict_content_security_policy(server: LiveServer) -> None:
    response = await get(server, "/app/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_app_pages_carry_no_inline_script_or_style() -> None:
    for path in STATIC_DIR.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and "style=" not in html, path
    for path in STATIC_DIR.rglob("*.js"):
        source = path.read_text()
        assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML", source), path
        assert 'setAttribute("style"' not in source, path


async def test_client_files_are_served_as_modules_with_nosniff(server: LiveServer) -> None:
    for path in ("/app/js/main.js", "/app/sw.js", "/app/app.css"):
        response = await get(server, path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        (await get(server, "/app/js/main.js")).headers["content-type"].startswith("text/javascript")
    )


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_load_only_local_assets(server: LiveServer, path: str) -> None:
    response = await get(server, path)
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text)
    assert "script-src 'self';" in response.headers["content-security-policy"]
    for source in sources:
        assert (await get(server, source)).status_code == 200, source


async def test_vendored_docs_bundles_fetch_nothing_from_a_cdn() -> None:
    for bundle in (
        VENDOR_DIR / "redoc" / "redoc.standalone.js",
        VENDOR_DIR / "swagger-ui" / "swagger-ui-bundle.js",
    ):
        assert not re.search(r"https://(cdn|unpkg|fonts\.googleapis)", bundle.read_text()), bundle
    for folder in ("redoc", "swagger-ui"):
        assert (VENDOR_DIR / folder / "LICENSE").exists()


async def test_openapi_still_lists_every_api_route(server: LiveServer) -> None:
    spec = (await get(server, "/openapi.json")).json()
    assert f"{API}/devices/register" in spec["paths"]
    assert not any(p.startswith("/app") for p in spec["paths"])


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_preflight_from_an_allowed_origin_passes(start_server: ServerFactory) -> None:
    server = await start_server(
        cors_allow_origins="https://chat.example.com, https://admin.example.com"
    )
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        for path in (
            "/conversations",
            "/devices/register",
            "/conversations/x/messages",
            "/internal/notify",
        ):
            response = await http.options(
                path, headers={**PREFLIGHT, "Origin": "https://admin.example.com"}
            )
            assert response.status_code == 200, path
            assert response.headers["access-control-allow-origin"] == "https://admin.example.com"
            assert "POST" in response.headers["access-control-allow-methods"]
            assert "authorization" in response.headers["access-control-allow-headers"].lower()
        actual = await http.get(
            "/devices", headers={**bearer("alice"), "Origin": "https://chat.example.com"}
        )
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == "https://chat.example.com"


async def test_cors_preflight_from_another_origin_is_refused(start_server: ServerFactory) -> None:
    server = await start_server(cors_allow_origins="https://chat.example.com")
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.options(
            "/conversations", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        actual = await http.get(
            "/devices", headers={**bearer("alice"), "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in actual.headers


async def test_without_cors_origins_no_cross_origin_access_is_granted(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.options(
            "/conversations", headers={**PREFLIGHT, "Origin": "https://chat.example.com"}
        )
        assert "access-control-allow-origin" not in response.headers
