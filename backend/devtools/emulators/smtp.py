"""A real SMTP server (aiosmtpd) that keeps what it receives: the tests' mail sink.

It runs on its own thread and loop on 127.0.0.1. Tests stop and start it to play an SMTP
outage (the port stays the same). For development, run it on its own and point the service
at it (`SMTP_HOST=127.0.0.1 SMTP_PORT=1025 SMTP_SECURITY=none`)::

    python -m backend.devtools.emulators.smtp --port 1025

and every email received is printed (headers, text part, HTML part) on stdout.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import socket
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, on_message: Callable[[EmailMessage, list[str]], None]) -> None:
        self.on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.on_message(message, list(envelope.rcpt_tos))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, port: int | None = None, *, echo: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.echo = echo
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _received(self, message: EmailMessage, recipients: list[str]) -> None:
        with self._lock:
            self.messages.append(message)
        if self.echo:
            print(describe(message), flush=True)

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(
                _Handler(self._received), hostname=self.host, port=self.port
            )
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def settings(self) -> dict[str, Any]:
        """Service settings that send through this sink, with quick retries for tests."""
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
            "email_from": "Messenger <messenger@example.com>",
            "email_retry_base_seconds": 0.05,
            "email_retry_max_seconds": 0.3,
            "email_sweep_interval_seconds": 0.2,
            "digest_check_interval_seconds": 0.2,
        }

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of a multipart/alternative email."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return (
        text_part.get_content() if text_part is not None else "",  # type: ignore[union-attr]
        html_part.get_content() if html_part is not None else "",  # type: ignore[union-attr]
    )


def describe(message: EmailMessage) -> str:
    text, html = parts(message)
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    return f"{'=' * 72}\n{headers}\n\n--- text ---\n{text}\n--- html ---\n{html}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Print every email sent to this SMTP server")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SmtpSink(args.port, echo=True) as sink:
        print(f"SMTP sink on {sink.host}:{sink.port}; Ctrl-C stops it", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
