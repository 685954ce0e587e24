"""An SMTP sink for `messenger dev`: accepts every message and keeps it as a `.eml` file.

Run as ``python -m backend.devtools.smtp_sink --dir D --state-file F``; the state file
(`{"pid", "host", "port"}`) appears once the server listens and is removed on exit.
`messenger dev inbox` reads the files, so the sink needs no control API.
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
from pathlib import Path
from typing import Any


class _Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ids = itertools.count(len(list(directory.glob("*.eml"))) + 1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.directory / f"{time.time():.6f}-{next(self._ids):06d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, path)  # readers never see half a message
        return "250 Message accepted"


def read_mail(directory: Path) -> list[dict[str, Any]]:
    """Every message the sink kept, oldest first: headers and the text body."""
    messages = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        messages.append(
            {
                "file": path.name,
                "headers": {k: str(v) for k, v in message.items()},
                "body": body.get_content() if body is not None else "",
            }
        )
    return messages


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(prog="python -m backend.devtools.smtp_sink")
    parser.add_argument("--dir", required=True, help="where to keep received messages")
    parser.add_argument("--state-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    port = args.port or _free_port()  # aiosmtpd's readiness probe cannot follow port 0
    controller = Controller(_Handler(directory), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        tmp = f"{args.state_file}.tmp"
        Path(tmp).write_text(json.dumps({"pid": os.getpid(), "host": "127.0.0.1", "port": port}))
        os.replace(tmp, args.state_file)
        while not stop.wait(0.5):
            pass
    finally:
        controller.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.state_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
