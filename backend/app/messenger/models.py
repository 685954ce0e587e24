"""Every table of the module, imported in one place so `Base.metadata` is complete (Alembic)."""

from backend.app.messenger.blocks.models import Block
from backend.app.messenger.conversations.models import Conversation, Participant
from backend.app.messenger.devices.models import DeviceToken
from backend.app.messenger.messages.models import Message
from backend.app.messenger.pruning_state import MaintenanceRun
from backend.app.messenger.push.models import PushDelivery, PushJob

__all__ = [
    "Block",
    "Conversation",
    "DeviceToken",
    "MaintenanceRun",
    "Message",
    "Participant",
    "PushDelivery",
    "PushJob",
]
