from __future__ import annotations

from fastapi import APIRouter

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.errors import unprocessable
from backend.app.messenger.topics import service
from backend.app.messenger.topics.schemas import SubscriptionOut, TopicList

router = APIRouter(tags=["topics"])


def _checked(topic: str) -> str:
    if not service.is_valid_topic(topic):
        raise unprocessable(("path", "topic"), "topic names match [a-z0-9._-]{1,64}")
    return topic


@router.put("/topics/{topic}/subscription", response_model=SubscriptionOut)
async def subscribe(topic: str, user: CurrentUserDep, session: SessionDep) -> SubscriptionOut:
    await service.subscribe(session, user_id=user.id, topic=_checked(topic))
    return SubscriptionOut(topic=topic, subscribed=True)


@router.delete("/topics/{topic}/subscription", response_model=SubscriptionOut)
async def unsubscribe(topic: str, user: CurrentUserDep, session: SessionDep) -> SubscriptionOut:
    """200 whether or not the caller was subscribed: the end state is what was asked for."""
    await service.unsubscribe(session, user_id=user.id, topic=_checked(topic))
    return SubscriptionOut(topic=topic, subscribed=False)


@router.get("/topics", response_model=TopicList)
async def list_topics(user: CurrentUserDep, session: SessionDep) -> TopicList:
    return TopicList(topics=await service.list_topics(session, user_id=user.id))
