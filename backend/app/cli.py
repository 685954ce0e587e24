"""The `messenger` command: serve, worker, migrate, prune, vapid-keys, token.

Logs go to stderr; stdout carries only what a command is asked to print.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from backend.app.config import Settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Messenger backend")
log = logging.getLogger("messenger")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _settings_with_infrastructure(
    *, migrate_embedded: bool, redis: bool = True, jwt: bool = False
) -> Settings:
    """Use DATABASE_URL / REDIS_URL when set; otherwise start embedded servers under DATA_DIR
    (Redis only for the commands that use it)."""
    from backend.app import embedded

    settings = Settings()
    if jwt:
        _require_jwt_secret(settings)
    started_postgres = False
    if not settings.database_url:
        settings.database_url = embedded.start_postgres(settings.data_dir)
        started_postgres = True
    if redis and not settings.redis_url:
        settings.redis_url = embedded.start_redis(settings.data_dir)
    if started_postgres and migrate_embedded:
        run_migrations(settings.database_url)
    return settings


def _require_jwt_secret(settings: Settings) -> None:
    """The start-up rule: a weak or missing JWT_SECRET ends the command with a message."""
    from backend.app.jwt_secret import WeakJwtSecret, resolve_jwt_secret

    try:
        resolve_jwt_secret(settings)
    except WeakJwtSecret as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _silence_secrets_in_logs() -> None:
    from backend.app.edge.logs import install_log_redaction

    install_log_redaction()


def run_migrations(database_url: str, revision: str = "head") -> None:
    from alembic.config import Config

    from alembic import command

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, revision)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    background: Annotated[
        bool, typer.Option(help="Also run push delivery and pruning in this process")
    ] = True,
) -> None:
    """Serve the HTTP/WebSocket API (and, by default, the background work)."""
    import uvicorn

    from backend.app.main import create_app

    _setup_logging()
    _silence_secrets_in_logs()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; exiting through SystemExit
    # (not the default handler) lets atexit stop the embedded PostgreSQL and Redis.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    settings = _settings_with_infrastructure(migrate_embedded=True, jwt=True)
    app = create_app(settings, background=background, freeze_gc=True)
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


@cli.command()
def worker() -> None:
    """Run push delivery and pruning only (no HTTP), to scale background work apart from the API."""
    from backend.app.main import open_runtime

    _setup_logging()
    settings = _settings_with_infrastructure(migrate_embedded=True, jwt=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with open_runtime(settings, api=False, background=True, freeze_gc=True):
            log.info("worker running")
            await stop.wait()
        log.info("worker stopped")

    asyncio.run(main())


@cli.command()
def migrate() -> None:
    """Apply every database migration (alembic upgrade head)."""
    _setup_logging()
    settings = _settings_with_infrastructure(migrate_embedded=False, redis=False)
    run_migrations(settings.database_url)
    log.info("database is at the latest revision")


@cli.command()
def prune(
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Idle threshold for this pass (replaces DEVICE_IDLE_DAYS)"),
    ] = None,
) -> None:
    """Run one pruning pass now and print `pruned <N>`."""
    from backend.app.db import create_engine, create_sessionmaker
    from backend.app.messenger.pruning import prune_pass, record_completion

    _setup_logging()
    settings = _settings_with_infrastructure(migrate_embedded=True, redis=False)

    async def main() -> int:
        engine = create_engine(settings.database_url, pool_size=2)
        try:
            sessionmaker = create_sessionmaker(engine)
            removed = await prune_pass(
                sessionmaker,
                idle_days=days or settings.device_idle_days,
                inactive_days=settings.inactive_device_retention_days,
                batch_size=settings.prune_batch_size,
                notification_retention_days=settings.notification_retention_days,
                push_retention_days=settings.push_delivery_retention_days,
            )
            async with sessionmaker.begin() as session:
                await record_completion(session)
            return removed
        finally:
            await engine.dispose()

    removed = asyncio.run(main())
    typer.echo(f"pruned {removed}")


@cli.command("vapid-keys")
def vapid_keys() -> None:
    """Print a fresh VAPID key pair in the form `.env` expects."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    def b64url(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    typer.echo(f"WEB_PUSH_PRIVATE_KEY={b64url(private)}")
    typer.echo(f"WEB_PUSH_PUBLIC_KEY={b64url(public)}")


@cli.command()
def token(
    user: Annotated[str, typer.Option(help="User id (the `sub` claim)")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    admin: Annotated[bool, typer.Option(help="Grant the admin role")] = False,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 86400,
) -> None:
    """Mint a development JWT signed with JWT_SECRET."""
    from backend.app.auth import mint_token

    settings = Settings()
    _require_jwt_secret(settings)
    typer.echo(mint_token(settings, user_id=user, name=name, admin=admin, ttl_seconds=ttl))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
