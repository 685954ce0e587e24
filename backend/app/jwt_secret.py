"""Where the JWT secret comes from, and the start-up rule that refuses a weak one.

A production deployment (DATABASE_URL set) must bring its own `JWT_SECRET` of at least 32
characters: a documented default would let anyone mint admin tokens. The embedded quick start
(no DATABASE_URL) generates a random secret once and keeps it under DATA_DIR, so
`messenger token` and `messenger serve` agree without any configuration.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from backend.app.config import Settings

MIN_SECRET_LENGTH = 32
SECRET_FILE_NAME = "jwt_secret"


class WeakJwtSecret(RuntimeError):
    """JWT_SECRET is unset or too short where a real one is required."""


def generated_secret(data_dir: Path) -> str:
    """The quick start's secret: created once (owner-only file), then reused."""
    path = data_dir / SECRET_FILE_NAME
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= MIN_SECRET_LENGTH:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def resolve_jwt_secret(settings: Settings) -> None:
    """Fill `settings.jwt_secret` for the CLI, or raise WeakJwtSecret (see module docstring)."""
    secret = settings.jwt_secret
    if secret and len(secret) < MIN_SECRET_LENGTH and settings.jwt_algorithm.startswith("HS"):
        raise WeakJwtSecret(
            f"JWT_SECRET is shorter than {MIN_SECRET_LENGTH} characters; set a long random value"
        )
    if secret:
        return
    if settings.database_url:
        raise WeakJwtSecret(
            "JWT_SECRET is not set: with DATABASE_URL set, a secret of at least "
            f"{MIN_SECRET_LENGTH} characters is required (the host application signs with it)"
        )
    settings.jwt_secret = generated_secret(settings.data_dir)
