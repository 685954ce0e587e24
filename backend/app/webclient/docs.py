"""`/docs` (Swagger UI) and `/redoc` from vendored assets, so they render on an air-gapped
server and under a CSP without inline script: FastAPI's own pages load both from a CDN and
start them with an inline script."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"


def _page(title: str, head: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="/app/icon.svg" type="image/svg+xml">
{head}
</head>
<body>
{body}
</body>
</html>
"""


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    title = app.title
    spec = escape(openapi_url, quote=True)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(
            _page(
                f"{title} - Swagger UI",
                f'<link rel="stylesheet" href="{VENDOR}/swagger-ui/swagger-ui.css">',
                f'<div id="swagger-ui" data-spec-url="{spec}"></div>\n'
                f'<script src="{VENDOR}/swagger-ui/swagger-ui-bundle.js"></script>\n'
                '<script src="/app/docs-init.js"></script>',
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(
            _page(
                f"{title} - ReDoc",
                "",
                f'<redoc spec-url="{spec}"></redoc>\n'
                f'<script src="{VENDOR}/redoc/redoc.standalone.js"></script>',
            )
        )
