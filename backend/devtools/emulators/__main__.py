"""Run all three emulators in their own process (benchmarks must not share our GIL).

Usage::

    python -m backend.devtools.emulators --latency-ms 50 --state-file /tmp/emu.json

Starts FCM, APNs and Web Push emulators, then atomically writes ``--state-file`` with
everything a client needs (the file appears only once every server listens, and is
removed again on exit, so "file exists" means "running"), and runs until SIGTERM/SIGINT.
State file layout::

    {"pid": 123, "ca_file": "...",
     "fcm": {"credentials_file", "project_id", "endpoint", "token_uri", "control_url"},
     "apns": {"host", "port", "host_port", "key_path", "key_id", "team_id", "topic",
              "ca_file", "control_url"},
     "webpush": {"endpoint_prefix", "audience", "ca_file", "control_url"}}

Every ``control_url`` is plain HTTP (``http://127.0.0.1:PORT/_emulator``) and serves
``GET /count``, ``GET /received?limit=N``, ``POST /latency {"seconds": x}``,
``POST /reset``, ``POST /script``, ``POST /always``; the Web Push one also serves
``POST /subscribe?n=1000`` (list of subscription dicts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from backend.devtools.providers import emulator_state

from . import tls
from .apns import ApnsEmulator
from .fcm import FcmEmulator
from .webpush import WebPushEmulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m backend.devtools.emulators")
    parser.add_argument("--state-file", required=True, help="where to write connection info")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated round trip")
    parser.add_argument(
        "--max-received",
        type=int,
        default=10_000,
        help="keep only the newest N recorded requests per emulator (memory bound)",
    )
    parser.add_argument("--topic", default="com.example.messenger", help="APNs topic")
    parser.add_argument(
        "--apns-connection-window",
        type=int,
        default=65_535,
        help="HTTP/2 connection receive window the APNs emulator grants (default: RFC 64 KiB)",
    )
    parser.add_argument(
        "--files-dir",
        help="keep the CA, FCM service account and APNs key here (default: a temporary dir)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    files_dir = args.files_dir
    if files_dir is not None:
        tls.use_directory(str(Path(files_dir) / "tls"))
    fcm = FcmEmulator(
        max_received=args.max_received, files_dir=files_dir and str(Path(files_dir) / "fcm")
    )
    apns = ApnsEmulator(
        topic=args.topic,
        connection_window=args.apns_connection_window,
        max_received=args.max_received,
        files_dir=files_dir and str(Path(files_dir) / "apns"),
    )
    webpush = WebPushEmulator(max_received=args.max_received)
    emulators = (fcm, apns, webpush)
    try:
        for emu in emulators:
            emu.start()
            emu.latency = args.latency_ms / 1000.0
        state: dict[str, Any] = {"pid": os.getpid(), **emulator_state(fcm, apns, webpush)}
        tmp = f"{args.state_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, args.state_file)
        print(f"push emulators ready: {args.state_file}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for emu in emulators:
            emu.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
