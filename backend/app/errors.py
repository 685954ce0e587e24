"""Client errors in the same shape FastAPI uses for request validation, so clients parse one format."""

from __future__ import annotations

from fastapi import HTTPException, status


def unprocessable(loc: tuple[str | int, ...], message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": list(loc), "msg": message, "type": "value_error"}],
    )


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")
