"""Reading push apps: the environment's `default` per provider plus PUSH_APPS_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.app.config import Settings
from backend.app.messenger.push.apps import (
    ApnsCredentials,
    PushAppsError,
    WebPushCredentials,
    configured_apps,
)

APPS = """
[[apps]]
id = "beta"
provider = "apns"
key_path = "/keys/beta.p8"
key_id = "KEY"
team_id = "TEAM"
topic = "com.example.beta"
use_sandbox = true

[[apps]]
id = "second-site"
provider = "web_push"
private_key = "priv"
public_key = "pub"
claims_email = "ops@example.com"
"""


def settings(tmp_path: Path, text: str, **values: object) -> Settings:
    path = tmp_path / "apps.toml"
    path.write_text(text)
    return Settings(_env_file=None, push_apps_file=str(path), **values)  # type: ignore[call-arg]


def test_every_provider_has_a_default_app_configured_or_not() -> None:
    apps = configured_apps(Settings(_env_file=None))  # type: ignore[call-arg]
    assert [(a.app_id, a.provider, a.credentials) for a in apps] == [
        ("default", "fcm", None),
        ("default", "apns", None),
        ("default", "web_push", None),
    ]


def test_the_file_adds_apps_with_their_own_settings(tmp_path: Path) -> None:
    apps = {
        (a.app_id, a.provider): a.credentials for a in configured_apps(settings(tmp_path, APPS))
    }
    assert apps[("beta", "apns")] == ApnsCredentials(
        "/keys/beta.p8", "KEY", "TEAM", "com.example.beta", use_sandbox=True
    )
    assert apps[("second-site", "web_push")] == WebPushCredentials(
        "priv", "pub", "mailto:ops@example.com"
    )


def test_an_app_missing_a_setting_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(PushAppsError, match="topic"):
        configured_apps(
            settings(
                tmp_path,
                '[[apps]]\nid="x"\nprovider="apns"\nkey_path="k"\nkey_id="i"\nteam_id="t"\n',
            )
        )


def test_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PushAppsError, match="provider"):
        configured_apps(settings(tmp_path, '[[apps]]\nid="x"\nprovider="gcm"\n'))


def test_an_app_id_twice_for_one_provider_is_refused(tmp_path: Path) -> None:
    twice = '[[apps]]\nid="default"\nprovider="fcm"\ncredentials_file="f.json"\n'
    with pytest.raises(PushAppsError, match="twice"):
        configured_apps(settings(tmp_path, twice))


def test_a_lease_shorter_than_a_send_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="PUSH_LEASE_SECONDS"):
        Settings(_env_file=None, push_lease_seconds=10, push_send_timeout_seconds=10)  # type: ignore[call-arg]
