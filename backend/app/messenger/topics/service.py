"""Topic subscriptions, and the subscriber query the notification center composes."""

from __future__ import annotations

import re

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.topics.models import TopicSubscription

TOPIC_PATTERN = r"^[a-z0-9._-]{1,64}$"
_TOPIC = re.compile(TOPIC_PATTERN)


def is_valid_topic(name: str) -> bool:
    return _TOPIC.fullmatch(name) is not None


async def subscribe(session: AsyncSession, *, user_id: str, topic: str) -> None:
    """Idempotent: subscribing twice keeps one subscription (and its original date)."""
    await session.execute(
        insert(TopicSubscription)
        .values(topic=topic, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["topic", "user_id"])
    )


async def unsubscribe(session: AsyncSession, *, user_id: str, topic: str) -> None:
    await session.execute(
        delete(TopicSubscription).where(
            TopicSubscription.topic == topic, TopicSubscription.user_id == user_id
        )
    )


async def list_topics(session: AsyncSession, *, user_id: str) -> list[str]:
    result = await session.scalars(
        select(TopicSubscription.topic)
        .where(TopicSubscription.user_id == user_id)
        .order_by(TopicSubscription.topic)
    )
    return list(result)


def subscribers_after(topic: str, after_user_id: str | None, limit: int) -> Select[tuple[str]]:
    """The next `limit` subscribers in user-id order (keyset), for set-based fan-out."""
    query = select(TopicSubscription.user_id.label("user_id")).where(
        TopicSubscription.topic == topic
    )
    if after_user_id is not None:
        query = query.where(TopicSubscription.user_id > after_user_id)
    return query.order_by(TopicSubscription.user_id).limit(limit)
