"""`messenger dev`: the service with every provider emulated on this machine.

Embedded PostgreSQL and Redis (as `messenger serve` without DATABASE_URL), the FCM, APNs and
Web Push emulators and an SMTP sink as local processes, the service configured to use them,
and two demo users whose tokens are printed. Everything lives under `DATA_DIR/dev/`. It
refuses to start when DATABASE_URL is set, so it cannot be switched on against a real
database by accident.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from backend.app import embedded
from backend.app.config import Settings

DEMO_USERS = {"ALICE": ("alice", "Alice"), "BOB": ("bob", "Bob")}
TOKEN_TTL_SECONDS = 30 * 86400


def dev_directory(settings: Settings | None = None) -> Path:
    return ((settings or Settings()).data_dir / "dev").resolve()


def read_state(directory: Path, name: str) -> dict[str, Any]:
    """The state file a running helper process wrote; exits with a hint when it is absent."""
    path = directory / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: is `messenger dev` running?") from None


def dev_settings(directory: Path) -> Settings:
    """The running dev service's settings (its embedded servers, sink and secrets)."""
    return Settings(**read_state(directory, "settings.json"))


def _refuse_outside_development(settings: Settings) -> None:
    if settings.database_url or os.environ.get("DATABASE_URL"):
        raise SystemExit(
            "messenger dev refuses to start while DATABASE_URL is set: it is the local "
            "playground with emulated providers, never a deployment. Unset DATABASE_URL "
            "(and REDIS_URL), or use `messenger serve`."
        )


def _secrets(directory: Path) -> dict[str, str]:
    """JWT secret, API key and VAPID keys: made once, kept so tokens survive restarts."""
    import secrets

    from backend.app.vapid import generate_vapid_keys

    path = directory / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    private, public = generate_vapid_keys()
    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "service_api_key": secrets.token_urlsafe(24),
        "web_push_private_key": private,
        "web_push_public_key": public,
    }
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _start_helper(directory: Path, name: str, module: str, *args: str) -> dict[str, Any]:
    """Start `python -m module` and wait for the state file that says it is listening."""
    state_file = directory / f"{name}.json"
    state_file.unlink(missing_ok=True)
    log_path = directory / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--state-file", str(state_file), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the helpers in order
        )

    embedded.stop_at_exit(process)
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start; see {log_path}")
        time.sleep(0.05)
    return json.loads(state_file.read_text())


def write_env(directory: Path, values: dict[str, str]) -> str:
    text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
    (directory / "env.sh").write_text(text)
    return text


def start(host: str, port: int) -> None:
    """Prepare everything, print how to use it, then serve until Ctrl-C."""
    import uvicorn

    from backend.app.auth import mint_token
    from backend.app.main import create_app
    from backend.app.schema_migrations import run_migrations
    from backend.devtools.emulators.smtp import service_settings
    from backend.devtools.providers import provider_settings

    settings = Settings()
    _refuse_outside_development(settings)
    embedded.require_embedded_extra()
    directory = dev_directory(settings)
    directory.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))

    database_url = embedded.start_postgres(directory)
    redis_url = embedded.start_redis(directory)
    run_migrations(database_url)
    emulators = _start_helper(
        directory,
        "emulators",
        "backend.devtools.emulators",
        "--files-dir",
        str(directory / "providers"),
        "--max-received",
        "1000",
    )
    smtp = _start_helper(
        directory,
        "smtp",
        "backend.devtools.emulators.smtp",
        "--quiet",
        "--dir",
        str(directory / "mail"),
    )
    secrets = _secrets(directory)
    overrides = {
        **provider_settings(
            emulators,
            vapid_private_key=secrets["web_push_private_key"],
            vapid_public_key=secrets["web_push_public_key"],
            email="dev@example.com",
        ),
        **service_settings(smtp["host"], smtp["port"]),
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_cluster": False,  # the embedded redis-server is a single node
        "jwt_secret": secrets["jwt_secret"],
        "service_api_key": secrets["service_api_key"],
    }
    settings = Settings(**overrides)
    (directory / "service.env").write_text(
        "".join(f"{k.upper()}={v}\n" for k, v in overrides.items() if "url" not in k)
    )
    settings_file = directory / "settings.json"  # for `messenger dev digest` (holds secrets)
    settings_file.write_text(json.dumps(overrides))
    settings_file.chmod(0o600)
    base = f"http://{host}:{port}"
    env = {"BASE": base, "API": f"{base}/api/v1/messenger", "API_KEY": secrets["service_api_key"]}
    for variable, (user, name) in DEMO_USERS.items():
        # The `email` claim is where the service's email to the user goes (digests).
        env[variable] = mint_token(
            settings,
            user_id=user,
            name=name,
            email=f"{user}@example.com",
            ttl_seconds=TOKEN_TTL_SECONDS,
        )
    env["ADMIN"] = mint_token(settings, user_id="admin", admin=True, ttl_seconds=TOKEN_TTL_SECONDS)
    exports = write_env(directory, env)
    typer.echo(
        f"messenger dev on {base}: providers emulated, mail goes to the sink, data in "
        f"{directory}.\nDemo users alice and bob; in another shell run  "
        'eval "$(messenger dev env)"  to get these variables:',
        err=True,
    )
    typer.echo(exports, nl=False)
    typer.echo("Then follow the README's 'Try it in five minutes'.", err=True)
    app = create_app(settings, background=True)
    uvicorn.run(app, host=host, port=port, log_config=None)
