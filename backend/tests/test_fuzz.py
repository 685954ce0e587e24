"""Fuzzing over the OpenAPI schema: schemathesis drives a real `messenger serve` process
(real PostgreSQL and Redis) with generated valid and invalid requests on every operation,
and no answer may be a 5xx.

`make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES, default 10;
about a minute); `make fuzz` runs many more.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from backend.tests.conftest import TEST_API_KEY, TEST_JWT_SECRET, bearer
from backend.tests.test_log_scrubbing import free_port, spawn_serve, wait_until_serving

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
FUZZ_SEED = os.environ.get("FUZZ_SEED")


def schemathesis_command() -> list[str]:
    st = Path(sys.executable).with_name("st")
    return [str(st)] if st.exists() else [shutil.which("st") or "st"]


async def test_generated_requests_on_every_operation_never_get_a_5xx(
    database_url: str, clean_state: None, infrastructure: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "PUSH_"))},
        "DATABASE_URL": database_url,
        "REDIS_URL": infrastructure.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "SERVICE_API_KEY": TEST_API_KEY,
        # Let the generated traffic through the abuse limits, so it reaches the handlers.
        "MESSAGE_RATE_PER_MINUTE": "1000000",
        "CONVERSATION_RATE_PER_MINUTE": "1000000",
        "DEVICE_TESTS_PER_MINUTE": "1000000",
        "DEVICE_REGISTRATIONS_PER_MINUTE": "1000000",
    }
    server_log = tmp_path / "server.log"
    server = spawn_serve(port, env=env, cwd=tmp_path, log_path=server_log)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(base)
        command = [
            *schemathesis_command(),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            bearer("fuzzer", admin=True)["Authorization"].join(["Authorization: ", ""]),
            "--header",
            f"X-API-Key: {TEST_API_KEY}",
            *(["--seed", FUZZ_SEED] if FUZZ_SEED else []),
        ]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=900, cwd=tmp_path
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, 30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    server_errors = [
        line for line in server_log.read_text(errors="replace").splitlines() if "ERROR" in line
    ]
    assert result.returncode == 0, (
        result.stdout[-20000:] + "\n--- server errors ---\n" + ("\n".join(server_errors[-50:]))
    )
