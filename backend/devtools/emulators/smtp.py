"""The one SMTP sink: a real SMTP server (aiosmtpd) that keeps every message it receives.

Used by the tests (`SmtpSink` in-process; they stop and start it to play an SMTP outage, the
port stays the same) and by `messenger dev`, which runs it as its own process keeping each
message as an `.eml` file that `messenger dev inbox` reads (`read_mail`)::

    python -m backend.devtools.emulators.smtp --dir D --state-file F   # messenger dev
    python -m backend.devtools.emulators.smtp --port 1025              # by hand: prints mail

The state file (`{"pid", "host", "port"}`) appears once the server listens and is removed
on exit. Point a service at a sink with `SMTP_HOST=127.0.0.1 SMTP_PORT=<port>
SMTP_SECURITY=none` (`SmtpSink.settings()`).
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import itertools
import json
import os
import signal
import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, on_message: Any) -> None:
        self.on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.on_message(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Keeps messages in memory, or with `directory` as `.eml` files (one per message,
    written atomically, named by arrival time so they sort oldest first)."""

    def __init__(
        self, port: int | None = None, *, directory: Path | None = None, echo: bool = False
    ) -> None:
        self.host = "127.0.0.1"
        # aiosmtpd's readiness probe cannot follow port 0, so pick a free port up front.
        self.port = port or free_port()
        self.directory = directory
        self.echo = echo
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Any = None
        self._ids = itertools.count(len(list(directory.glob("*.eml"))) + 1 if directory else 1)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _received(self, raw: bytes) -> None:
        message = _parse(raw)
        with self._lock:
            if self.directory is None:
                self._messages.append(message)
            else:
                path = self.directory / f"{time.time():.6f}-{next(self._ids):06d}.eml"
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(raw)
                os.replace(tmp, path)  # readers never see half a message
        if self.echo:
            print(describe(message), flush=True)

    @property
    def messages(self) -> list[EmailMessage]:
        """Everything received since the last `reset()`, oldest first."""
        if self.directory is not None:
            return [_parse(path.read_bytes()) for path in sorted(self.directory.glob("*.eml"))]
        return self._messages  # the live list, as before (tests index and compare it)

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

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
            self._messages.clear()
            if self.directory is not None:
                for path in self.directory.glob("*.eml"):
                    path.unlink()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def settings(self) -> dict[str, Any]:
        """Service settings that send through this sink, with quick retries for tests."""
        return {
            **service_settings(self.host, self.port),
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


def service_settings(host: str, port: int) -> dict[str, Any]:
    """The service's SMTP settings for a sink at host:port (plain SMTP, no login)."""
    return {
        "smtp_host": host,
        "smtp_port": port,
        "smtp_security": "none",
        "email_from": "Messenger <messenger@example.com>",
    }


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


def read_mail(directory: Path) -> list[dict[str, Any]]:
    """What a sink with `directory` kept, oldest first: file name, headers and the text body
    (`messenger dev inbox` reads it this way, so the sink needs no control API)."""
    kept = []
    for path in sorted(directory.glob("*.eml")):
        message = _parse(path.read_bytes())
        body = message.get_body(preferencelist=("plain", "html"))
        kept.append(
            {
                "file": path.name,
                "headers": {k: str(v) for k, v in message.items()},
                "body": body.get_content() if body is not None else "",  # type: ignore[union-attr]
            }
        )
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.devtools.emulators.smtp")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--dir", help="keep each message as an .eml file here")
    parser.add_argument("--state-file", help="write {pid, host, port} here once listening")
    parser.add_argument("--quiet", action="store_true", help="do not print received mail")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    directory = Path(args.dir) if args.dir else None
    with SmtpSink(args.port or None, directory=directory, echo=not args.quiet) as sink:
        try:
            if args.state_file:
                tmp = f"{args.state_file}.tmp"
                state = {"pid": os.getpid(), "host": sink.host, "port": sink.port}
                Path(tmp).write_text(json.dumps(state))
                os.replace(tmp, args.state_file)
            print(f"SMTP sink on {sink.host}:{sink.port}; Ctrl-C stops it", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            if args.state_file:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(args.state_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
