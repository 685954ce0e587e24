"""Local emulators of FCM HTTP v1, APNs (HTTP/2) and Web Push for tests and benchmarks.

Each emulator runs on its own thread + asyncio loop on 127.0.0.1 and speaks the real wire
protocol, so the real pyfcm / aioapns / pywebpush code can be pointed at it. Typical use::

    from backend.devtools.emulators import ApnsEmulator, FcmEmulator, WebPushEmulator, fcm

    with FcmEmulator() as emu:
        emu.script("token-1", fcm.unregistered())
        ...
        emu.wait_for(1)

Error-reply helpers live in the submodules: :mod:`.fcm` (``fcm.unregistered()``...),
:mod:`.apns` (``apns.reply(410, "Unregistered")``) and :mod:`.webpush`
(``webpush.reply(410)``). ``python -m backend.devtools.emulators`` runs all three in a
separate process for benchmarks (see :mod:`.__main__`).
"""

from . import apns, fcm, tls, webpush
from .apns import ApnsEmulator
from .base import Emulator, Received, Reply
from .fcm import FcmEmulator
from .webpush import WebPushEmulator

__all__ = [
    "ApnsEmulator",
    "Emulator",
    "FcmEmulator",
    "Received",
    "Reply",
    "WebPushEmulator",
    "apns",
    "fcm",
    "tls",
    "webpush",
]
