"""`messenger dev`'s own guarantees, beside the README walkthrough (test_walkthrough.py)."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from backend.devtools.emulators import FcmEmulator
from backend.devtools.faults import Fault, Provider
from backend.devtools.providers import fault_reply
from backend.tests.messaging import HANG_GUARD_SECONDS

MESSENGER = str(Path(sys.executable).parent / "messenger")


def test_dev_mode_refuses_to_start_when_database_url_is_set(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://db.example/prod", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [MESSENGER, "dev"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "refuses to start while DATABASE_URL is set" in result.stderr
    assert not (tmp_path / "dev").exists()


def test_smtp_sink_keeps_every_message_it_receives(tmp_path: Path) -> None:
    pytest.importorskip("aiosmtpd")
    from backend.devtools.emulators.smtp import read_mail

    state_file = tmp_path / "smtp.json"
    command = ["-m", "backend.devtools.emulators.smtp", "--dir", str(tmp_path / "mail")]
    sink = subprocess.Popen([sys.executable, *command, "--state-file", str(state_file)])
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while not state_file.exists():
            assert sink.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi"
        message.set_content("Your digest")
        with smtplib.SMTP(state["host"], state["port"]) as smtp:
            smtp.send_message(message)
        [kept] = read_mail(tmp_path / "mail")
        assert kept["headers"]["Subject"] == "Hi"
        assert kept["body"].strip() == "Your digest"
    finally:
        sink.terminate()
        sink.wait(10)


def test_fault_ok_makes_a_token_healthy_again() -> None:
    with FcmEmulator() as emulator:
        emulator.always("token-1", fault_reply(Provider.FCM, Fault.DEAD))
        assert emulator._pick("token-1").status == 404
        emulator.always("token-1", fault_reply(Provider.FCM, Fault.OK))
        assert emulator._pick("token-1") is None


@pytest.mark.parametrize("provider", list(Provider))
def test_every_fault_is_the_providers_genuine_answer(provider: Provider) -> None:
    statuses = {fault: fault_reply(provider, fault) for fault in Fault}
    assert statuses[Fault.OK] is None
    assert statuses[Fault.THROTTLED].status == 429
    assert statuses[Fault.THROTTLED].headers["Retry-After"] == "5"
    assert statuses[Fault.FAILING].status == 503
    assert statuses[Fault.DEAD].status in (404, 410)
