"""The messenger module. `embed(app, settings)` puts it inside a host FastAPI application
(see backend/app/embedding.py and examples/embed_host.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.app.embedding import embed as embed


def __getattr__(name: str) -> Any:
    # Lazy: the domain packages import this package, and embedding imports them.
    if name == "embed":
        from backend.app.embedding import embed

        return embed
    raise AttributeError(name)
