"""Log redaction: no JWT, device token, Web Push endpoint or query string reaches a log line.

The WebSocket carries its JWT in the query string and `DELETE /devices/{token}` carries a raw
device token (or a URL-encoded Web Push endpoint) in the path; uvicorn logs both. The filter
rewrites each record's final message, so it works whatever the format string.
"""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"\?[^\s\"']+")
_DEVICE_PATH = re.compile(r"/devices/(?!(?:register|test|stats)\b)[^\s\"'?]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
REDACTED = "<redacted>"
# Loggers that print request lines (paths and query strings).
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(message: str) -> str:
    message = _JWT.sub(REDACTED, message)
    message = _DEVICE_PATH.sub("/devices/" + REDACTED, message)
    return _QUERY.sub("?" + REDACTED, message)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Idempotent. Logger-level on uvicorn's request loggers (it survives uvicorn configuring
    its handlers later); handler-level on the root handlers for everything that propagates."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
