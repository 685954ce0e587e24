"""The Redis key names of a user's presence (what each holds: the package docstring)."""

from __future__ import annotations


def connections_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}"


def idle_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}:idle"


def last_seen_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}:last_seen"
