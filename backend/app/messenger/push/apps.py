"""Push apps: sets of provider credentials. The environment's provider variables form the app
`default` of each provider they configure; `PUSH_APPS_FILE` (TOML, `[[apps]]`) adds more.
Endpoint and trust settings (`FCM_ENDPOINT`, `APNS_HOST`, the CA files, the Web Push
allow-list) are shared by every app and travel in `Transport`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.app.config import Settings
from backend.app.messenger.push.vocabulary import Provider

DEFAULT_APP = "default"


class PushAppsError(ValueError):
    """PUSH_APPS_FILE cannot be used as it is; the message says why (start-up refuses)."""


def claims_sub(email: str) -> str:
    email = email.strip()
    if not email or email.startswith(("mailto:", "https:")):
        return email
    return f"mailto:{email}"


@dataclass(frozen=True, slots=True)
class FcmCredentials:
    credentials_file: str
    project_id: str = ""


@dataclass(frozen=True, slots=True)
class ApnsCredentials:
    key_path: str
    key_id: str
    team_id: str
    topic: str
    use_sandbox: bool = False


@dataclass(frozen=True, slots=True)
class WebPushCredentials:
    private_key: str
    public_key: str
    claims_sub: str = ""


Credentials = FcmCredentials | ApnsCredentials | WebPushCredentials


@dataclass(frozen=True, slots=True)
class PushApp:
    app_id: str
    provider: Provider
    credentials: Credentials | None  # None: the provider's default app is not configured


@dataclass(frozen=True, slots=True)
class Transport:
    """What every app of every provider shares: endpoints, trust, timeouts and capacity."""

    send_timeout: float
    concurrency: int
    interactive_concurrency: int
    fcm_endpoint: str
    apns_host: str
    apns_ca_file: str
    web_push_ca_file: str
    web_push_allowlist: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Transport:
        return cls(
            send_timeout=settings.push_send_timeout_seconds,
            concurrency=settings.push_concurrency_per_provider,
            interactive_concurrency=settings.push_interactive_concurrency,
            fcm_endpoint=settings.fcm_endpoint,
            apns_host=settings.apns_host,
            apns_ca_file=settings.apns_ca_file,
            web_push_ca_file=settings.web_push_ca_file,
            web_push_allowlist=settings.web_push_allowlist,
        )


def default_apps(settings: Settings) -> list[PushApp]:
    """The environment's app `default`, one per provider (unconfigured ones included)."""
    fcm = FcmCredentials(settings.fcm_credentials_file, settings.fcm_project_id)
    apns = ApnsCredentials(
        settings.apns_key_path,
        settings.apns_key_id,
        settings.apns_team_id,
        settings.apns_topic,
        settings.apns_use_sandbox,
    )
    web = WebPushCredentials(
        settings.web_push_private_key,
        settings.web_push_public_key,
        claims_sub(settings.web_push_claims_email),
    )
    return [
        PushApp(DEFAULT_APP, Provider.FCM, fcm if settings.fcm_configured else None),
        PushApp(DEFAULT_APP, Provider.APNS, apns if settings.apns_configured else None),
        PushApp(DEFAULT_APP, Provider.WEB_PUSH, web if settings.web_push_configured else None),
    ]


_FIELDS: dict[Provider, tuple[type[Any], tuple[str, ...], tuple[str, ...]]] = {
    # provider: (credentials class, required keys, optional keys)
    Provider.FCM: (FcmCredentials, ("credentials_file",), ("project_id",)),
    Provider.APNS: (ApnsCredentials, ("key_path", "key_id", "team_id", "topic"), ("use_sandbox",)),
    Provider.WEB_PUSH: (WebPushCredentials, ("private_key", "public_key"), ("claims_email",)),
}


def _parse_app(entry: object, index: int) -> PushApp:
    where = f"PUSH_APPS_FILE [[apps]] #{index + 1}"
    if not isinstance(entry, dict):
        raise PushAppsError(f"{where} is not a table")
    app_id, provider = entry.get("id"), entry.get("provider")
    if not isinstance(app_id, str) or not app_id or len(app_id) > 64:
        raise PushAppsError(f"{where} needs an `id` of 1-64 characters")
    try:
        provider = Provider(provider)
    except ValueError:
        raise PushAppsError(f"{where} ({app_id}): provider must be fcm, apns or web_push") from None
    cls, required, optional = _FIELDS[provider]
    unknown = set(entry) - {"id", "provider", *required, *optional}
    missing = [k for k in required if not entry.get(k)]
    if unknown or missing:
        raise PushAppsError(
            f"{where} ({app_id}): missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    values = {k: entry[k] for k in (*required, *optional) if k in entry}
    if provider is Provider.WEB_PUSH:
        values["claims_sub"] = claims_sub(str(values.pop("claims_email", "")))
    if provider is Provider.APNS:
        values["use_sandbox"] = bool(values.get("use_sandbox", False))
    return PushApp(app_id, provider, cls(**values))


def file_apps(path: str) -> list[PushApp]:
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PushAppsError(f"PUSH_APPS_FILE {path}: {exc}") from exc
    entries = document.get("apps", [])
    if not isinstance(entries, list):
        raise PushAppsError("PUSH_APPS_FILE: `apps` must be an array of tables ([[apps]])")
    return [_parse_app(entry, index) for index, entry in enumerate(entries)]


def configured_apps(settings: Settings) -> list[PushApp]:
    """Every (app, provider): the defaults first, then the file's; duplicates refused."""
    apps = default_apps(settings)
    if settings.push_apps_file:
        apps += file_apps(settings.push_apps_file)
    seen: set[tuple[str, Provider]] = set()
    for app in apps:
        if (app.app_id, app.provider) in seen:
            raise PushAppsError(f"PUSH_APPS_FILE: app {app.app_id!r} of {app.provider} twice")
        seen.add((app.app_id, app.provider))
    return apps
