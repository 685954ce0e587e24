"""The `messenger` command: serve, worker, migrate, prune, vapid-keys, token, digest.

Logs go to stderr; stdout carries only what a command is asked to print.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.app.command_setup import (
    require_jwt_secret,
    settings_with_infrastructure,
    setup_logging,
    silence_secrets_in_logs,
)
from backend.app.config import Settings
from backend.app.schema_migrations import run_migrations

if TYPE_CHECKING:
    from fastapi import FastAPI

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Messenger backend")
log = logging.getLogger("messenger")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    background: Annotated[
        bool, typer.Option(help="Also run push delivery and pruning in this process")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (one per core); each also runs the "
            "background work unless --no-background",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP/WebSocket API (and, by default, the background work)."""
    import uvicorn

    from backend.app.main import create_app

    setup_logging()
    silence_secrets_in_logs()
    if workers == 1:
        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; exiting through
        # SystemExit (not the default handler) lets atexit stop the embedded servers.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: sys.exit(0))
    settings = settings_with_infrastructure(migrate_embedded=True, jwt=True)
    if workers > 1:
        # uvicorn's supervisor spawns fresh interpreters that build the app from an import
        # string: they find the (possibly embedded) servers and the mode in the environment.
        os.environ["DATABASE_URL"] = settings.database_url
        os.environ["REDIS_URL"] = settings.redis_url
        os.environ[SERVE_BACKGROUND_ENV] = "1" if background else "0"
        uvicorn.run(
            "backend.app.cli:worker_process_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=True,
        )
        return
    app = create_app(settings, background=background, freeze_gc=True)
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


SERVE_BACKGROUND_ENV = "MESSENGER_SERVE_BACKGROUND"


def worker_process_app() -> FastAPI:
    """The app of one `serve --workers N` process (uvicorn calls this factory in each)."""
    from backend.app.main import create_app

    setup_logging()
    silence_secrets_in_logs()
    background = os.environ.get(SERVE_BACKGROUND_ENV, "1") == "1"
    return create_app(Settings(), background=background, freeze_gc=True)


@cli.command()
def worker() -> None:
    """Run push delivery and pruning only (no HTTP), to scale background work apart from the API."""
    from backend.app.main import open_runtime

    setup_logging()
    settings = settings_with_infrastructure(migrate_embedded=True, jwt=True)

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
    setup_logging()
    settings = settings_with_infrastructure(migrate_embedded=False, redis=False)
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

    setup_logging()
    settings = settings_with_infrastructure(migrate_embedded=True, redis=False)

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
    from backend.app.vapid import generate_vapid_keys

    private, public = generate_vapid_keys()
    typer.echo(f"WEB_PUSH_PRIVATE_KEY={private}")
    typer.echo(f"WEB_PUSH_PUBLIC_KEY={public}")


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
    require_jwt_secret(settings)
    typer.echo(mint_token(settings, user_id=user, name=name, admin=admin, ttl_seconds=ttl))


@cli.command()
def digest(user: Annotated[str, typer.Option(help="User id whose digest to send now")]) -> None:
    """Send that user's digest now if anything is unread; prints `sent` or `nothing`."""
    setup_logging()
    settings = settings_with_infrastructure(migrate_embedded=True, redis=False)
    typer.echo("sent" if send_digest_command(settings, user) else "nothing")


def send_digest_command(settings: Settings, user: str) -> bool:
    """`messenger digest --user` (and `messenger dev digest`): queue the digest, deliver it."""
    from datetime import UTC, datetime

    from backend.app.db import create_engine, create_sessionmaker
    from backend.app.messenger.digest.service import send_digest_now
    from backend.app.messenger.digest.sources import default_source
    from backend.app.messenger.email.sender import EmailSender

    if not settings.email_enabled:
        log.warning("email is off (SMTP_HOST is not set): no digest can be sent")

    async def main() -> bool:
        engine = create_engine(settings.database_url, pool_size=2)
        try:
            sessionmaker = create_sessionmaker(engine)
            async with sessionmaker.begin() as session:
                email_id = await send_digest_now(
                    session,
                    settings,
                    user_id=user,
                    source=default_source(),
                    now=datetime.now(UTC),
                )
            if email_id is None:
                log.info("no digest for this user: nothing unread, email off, or no address")
                return False
            # Queued durably; try it at once (an unreachable server leaves it to the workers).
            await EmailSender(settings, sessionmaker).deliver_due(only_ids=[email_id])
            return True
        finally:
            await engine.dispose()

    return asyncio.run(main())


def main() -> None:
    cli()


def _add_dev_commands() -> None:
    """`messenger dev ...` (the playground lives with the emulators in backend.devtools)."""
    from backend.devtools.dev_commands import dev_cli

    cli.add_typer(dev_cli, name="dev")


_add_dev_commands()


if __name__ == "__main__":
    main()
