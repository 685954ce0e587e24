"""How the service meets the provider emulators: their connection state, the settings that
point pyfcm/aioapns/pywebpush at them, and the replies that inject faults.

One description used by the tests (emulators on threads), the benchmarks and `messenger dev`
(emulators in their own process, described by the state file of
``python -m backend.devtools.emulators``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.devtools.emulators import ApnsEmulator, FcmEmulator, Reply, WebPushEmulator
from backend.devtools.emulators import apns as apns_replies
from backend.devtools.emulators import fcm as fcm_replies
from backend.devtools.emulators import webpush as webpush_replies
from backend.devtools.faults import Fault, Provider


def emulator_state(fcm: FcmEmulator, apns: ApnsEmulator, webpush: WebPushEmulator) -> dict:
    """Everything a client needs to reach three running emulators (JSON-serialisable)."""
    return {
        "ca_file": webpush.ca_file,
        "fcm": {
            "credentials_file": fcm.credentials_file,
            "project_id": fcm.project_id,
            "endpoint": fcm.endpoint,
            "token_uri": fcm.token_uri,
            "control_url": fcm.control_url,
        },
        "apns": {
            "host": apns.host,
            "port": apns.port,
            "host_port": apns.host_port,
            "key_path": apns.key_path,
            "key_id": apns.key_id,
            "team_id": apns.team_id,
            "topic": apns.topic,
            "ca_file": apns.ca_file,
            "control_url": apns.control_url,
        },
        "webpush": {
            "endpoint_prefix": webpush.endpoint_prefix,
            "audience": webpush.audience,
            "ca_file": webpush.ca_file,
            "control_url": webpush.control_url,
        },
    }


def provider_settings(
    state: dict[str, Any], *, vapid_private_key: str, vapid_public_key: str, email: str
) -> dict[str, str]:
    """Service settings (Settings field names; upper-case them for the environment) that
    point all three real provider libraries at the emulators described by ``state``."""
    fcm, apns, webpush = state["fcm"], state["apns"], state["webpush"]
    return {
        "fcm_credentials_file": fcm["credentials_file"],
        "fcm_endpoint": fcm["endpoint"],
        "apns_key_path": apns["key_path"],
        "apns_key_id": apns["key_id"],
        "apns_team_id": apns["team_id"],
        "apns_topic": apns["topic"],
        "apns_host": apns["host_port"],
        "apns_ca_file": apns["ca_file"],
        "web_push_private_key": vapid_private_key,
        "web_push_public_key": vapid_public_key,
        "web_push_claims_email": email,
        "web_push_endpoint_allowlist": webpush["endpoint_prefix"],
        "web_push_ca_file": webpush["ca_file"],
    }


@dataclass
class Providers:
    """Three in-process emulators plus the VAPID keys the service signs with."""

    fcm: FcmEmulator
    apns: ApnsEmulator
    webpush: WebPushEmulator
    vapid_private_key: str
    vapid_public_key: str

    def settings(self) -> dict[str, Any]:
        """Server settings that point all three real provider libraries at the emulators."""
        return {
            **provider_settings(
                emulator_state(self.fcm, self.apns, self.webpush),
                vapid_private_key=self.vapid_private_key,
                vapid_public_key=self.vapid_public_key,
                email="ops@example.com",
            ),
            # Keep retries quick in tests; the backoff shape itself is what is checked.
            "push_retry_base_seconds": 0.05,
            "push_retry_max_seconds": 0.2,
        }

    def reset(self) -> None:
        for emulator in (self.fcm, self.apns, self.webpush):
            emulator.reset()


THROTTLE_RETRY_AFTER_SECONDS = 5


def fault_reply(provider: Provider, fault: Fault) -> Reply | None:
    """The provider's genuine answer for ``fault`` (None for `ok`)."""
    retry = THROTTLE_RETRY_AFTER_SECONDS
    match provider, fault:
        case _, Fault.OK:
            return None
        case Provider.FCM, Fault.DEAD:
            return fcm_replies.unregistered()
        case Provider.FCM, Fault.THROTTLED:
            return fcm_replies.quota_exceeded(retry_after=retry)
        case Provider.FCM, Fault.FAILING:
            return fcm_replies.unavailable()
        case Provider.APNS, Fault.DEAD:
            return apns_replies.reply(410, "Unregistered")
        case Provider.APNS, Fault.THROTTLED:
            reply = apns_replies.reply(429, "TooManyRequests")
            reply.headers["Retry-After"] = str(retry)
            return reply
        case Provider.APNS, Fault.FAILING:
            return apns_replies.reply(503, "ServiceUnavailable")
        case Provider.WEBPUSH, Fault.DEAD:
            return webpush_replies.reply(410)
        case Provider.WEBPUSH, Fault.THROTTLED:
            return webpush_replies.reply(429, retry_after=retry)
        case _:
            return webpush_replies.reply(503)
