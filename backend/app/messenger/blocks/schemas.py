from __future__ import annotations

from pydantic import BaseModel


class BlockState(BaseModel):
    user_id: str
    blocked: bool


class BlockList(BaseModel):
    user_ids: list[str]
