"""Every table of the module, imported in one place so `Base.metadata` is complete (Alembic)."""

from backend.app.messenger.blocks.models import Block
from backend.app.messenger.conversations.models import Conversation, Participant
from backend.app.messenger.devices.models import DeviceToken
from backend.app.messenger.digest.models import DigestRun
from backend.app.messenger.email.models import Email
from backend.app.messenger.messages.models import Message
from backend.app.messenger.notifications.models import (
    InboxEntry,
    Notification,
    NotificationRecipient,
)
from backend.app.messenger.preferences.models import NotificationPreference
from backend.app.messenger.pruning_state import MaintenanceRun
from backend.app.messenger.push.models import PushDelivery, PushJob
from backend.app.messenger.topics.models import TopicSubscription

__all__ = [
    "Block",
    "Conversation",
    "DeviceToken",
    "DigestRun",
    "Email",
    "InboxEntry",
    "MaintenanceRun",
    "Message",
    "Notification",
    "NotificationPreference",
    "NotificationRecipient",
    "Participant",
    "PushDelivery",
    "PushJob",
    "TopicSubscription",
]
