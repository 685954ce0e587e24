"""The module's HTTP and WebSocket surface, mounted under /api/v1/messenger."""

from fastapi import APIRouter

from backend.app.messenger.blocks.router import router as blocks_router
from backend.app.messenger.conversations.router import router as conversations_router
from backend.app.messenger.devices.router import router as devices_router
from backend.app.messenger.messages.router import router as messages_router
from backend.app.messenger.notifications.router import router as notifications_router
from backend.app.messenger.preferences.router import router as preferences_router
from backend.app.messenger.push.router import router as push_router
from backend.app.messenger.read_state.router import router as read_state_router
from backend.app.messenger.realtime.router import router as realtime_router
from backend.app.messenger.topics.router import router as topics_router

router = APIRouter()
router.include_router(devices_router)
router.include_router(conversations_router)
router.include_router(messages_router)
router.include_router(push_router)
router.include_router(read_state_router)
router.include_router(realtime_router)
router.include_router(preferences_router)
router.include_router(blocks_router)
router.include_router(notifications_router)
router.include_router(topics_router)
