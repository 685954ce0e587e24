"""What `messenger` commands do before their work: logs to stderr with secrets redacted,
the JWT secret rule, and settings whose database and Redis exist (embedded when unset)."""

from __future__ import annotations

import logging
import sys

import typer

from backend.app.config import Settings
from backend.app.schema_migrations import run_migrations


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def settings_with_infrastructure(
    *, migrate_embedded: bool, redis: bool = True, jwt: bool = False
) -> Settings:
    """Use DATABASE_URL / REDIS_URL when set; otherwise start embedded servers under DATA_DIR
    (Redis only for the commands that use it)."""
    from backend.app import embedded

    settings = Settings()
    if jwt:
        require_jwt_secret(settings)
    if not (settings.database_url and (settings.redis_url or not redis)):
        embedded.require_embedded_extra()
    started_postgres = False
    if not settings.database_url:
        settings.database_url = embedded.start_postgres(settings.data_dir)
        started_postgres = True
    if redis and not settings.redis_url:
        # The embedded redis-server is a single node: a cluster must be named by REDIS_URL.
        settings.redis_cluster = False
        settings.redis_url = embedded.start_redis(settings.data_dir)
    if started_postgres and migrate_embedded:
        run_migrations(settings.database_url)
    return settings


def require_jwt_secret(settings: Settings) -> None:
    """The start-up rule: a weak or missing JWT_SECRET ends the command with a message."""
    from backend.app.jwt_secret import WeakJwtSecret, resolve_jwt_secret

    try:
        resolve_jwt_secret(settings)
    except WeakJwtSecret as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def silence_secrets_in_logs() -> None:
    from backend.app.edge.logs import install_log_redaction

    install_log_redaction()
