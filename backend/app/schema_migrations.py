"""Running the Alembic migrations from code (`messenger migrate`, embedded servers, tests, bench),
without alembic.ini, so an installed package migrates as well as a checkout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_directory() -> Path:
    """The Alembic scripts: the top-level `alembic/` folder, reached through the package's
    `backend/migrations` link in a checkout and shipped as package data in a wheel."""
    import backend

    return Path(backend.__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration without alembic.ini (an installed package has none)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def run_migrations(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)
