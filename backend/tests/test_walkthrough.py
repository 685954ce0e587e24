"""The README's "Try it in five minutes" runs as written, against a real `messenger dev`.

Every command of the README's walkthrough block is executed in one bash session (so
variables carry over, as in the reader's terminal); a `# expect: a ; b` comment lists text
its output must show, and such a command is repeated until it does (pushes are delivered
in the background).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.tests.messaging import HANG_GUARD_SECONDS

pytest.importorskip("pgserver", reason="messenger dev needs the embedded servers")
pytest.importorskip("aiosmtpd", reason="messenger dev needs the SMTP sink")

ROOT = Path(__file__).resolve().parents[2]
MESSENGER = str(Path(sys.executable).parent / "messenger")
MARKER = "<!-- walkthrough -->"


@dataclass
class Step:
    command: str
    expect: list[str]


def walkthrough_steps(readme: str) -> list[Step]:
    """The commands of the fenced block after the marker (continuation lines joined)."""
    block = re.search(re.escape(MARKER) + r"\s*```sh\n(.*?)\n```", readme, re.S)
    assert block, f"README.md has no ```sh block after {MARKER}"
    steps = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command, _, expect = line.partition("   # expect: ")
        command = command.replace(".venv/bin/messenger", MESSENGER)
        steps.append(Step(command, [e.strip() for e in expect.split(" ; ") if e.strip()]))
    return steps


class Shell:
    """One bash session, like the reader's second terminal."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def run(self, command: str) -> tuple[int, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{command}\necho; echo __status=$?\n")
        self.process.stdin.flush()
        lines = []
        while not (line := self.process.stdout.readline()).startswith("__status="):
            assert line, f"bash exited during {command!r}"
            lines.append(line)
        return int(line.split("=", 1)[1]), "".join(lines)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dev_mode(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`messenger dev` in a throwaway data directory; yields the reader's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEST_", "PYTEST")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env |= {"DATA_DIR": str(tmp_path / "data"), "PATH": f"{Path(MESSENGER).parent}:{env['PATH']}"}
    port = _free_port()
    env["DEV_LOG"] = str(tmp_path / "dev.log")  # for the failure message only
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [MESSENGER, "dev", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS * 4  # initdb of a fresh cluster
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, "messenger dev did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_every_command_of_the_readme_walkthrough_works(dev_mode: dict[str, str]) -> None:
    steps = walkthrough_steps((ROOT / "README.md").read_text())
    assert len(steps) >= 10
    shell = Shell(dev_mode)
    transcript: list[str] = []
    try:
        for step in steps:
            deadline = time.monotonic() + HANG_GUARD_SECONDS
            while True:
                status, output = shell.run(step.command)
                missing = [text for text in step.expect if text not in output]
                if status == 0 and not missing:
                    transcript.append(f"$ {step.command}\n{output}")
                    break
                assert step.expect and time.monotonic() < deadline, "\n".join(
                    [
                        *transcript,
                        f"$ {step.command}\nexit {status}, missing {missing}:\n{output}",
                        "messenger dev's log:",
                        Path(dev_mode["DEV_LOG"]).read_text()[-5000:],
                    ]
                )
                time.sleep(0.25)
    finally:
        shell.close()
