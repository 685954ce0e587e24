from __future__ import annotations

from pydantic import BaseModel


class TopicList(BaseModel):
    topics: list[str]


class SubscriptionOut(BaseModel):
    topic: str
    subscribed: bool
