"""What each provider's answers mean for a device (shared/PROVIDERS.md's table)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from pywebpush import WebPushException

from backend.app.messenger.push.providers import apns, fcm, webpush
from backend.app.messenger.push.providers.base import SendResult, Verdict


def config_error(reason: str) -> SendResult:
    return SendResult.failed(f"configuration error: {reason}")


def fcm_error(status: int, code: str, message: str = "") -> dict:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": code,
            "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
            ],
        }
    }


def test_fcm_unregistered_and_sender_mismatch_are_dead_tokens() -> None:
    assert (
        fcm.classify_answer(404, fcm_error(404, "UNREGISTERED"), {}, config_error).outcome
        == Verdict.TOKEN_DEAD
    )
    assert (
        fcm.classify_answer(403, fcm_error(403, "SENDER_ID_MISMATCH"), {}, config_error).outcome
        == Verdict.TOKEN_DEAD
    )


def test_fcm_invalid_argument_about_the_token_is_a_dead_token() -> None:
    body = fcm_error(
        400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"
    )
    assert fcm.classify_answer(400, body, {}, config_error).outcome == Verdict.TOKEN_DEAD


def test_fcm_quota_backs_off_at_least_a_minute_without_retry_after() -> None:
    result = fcm.classify_answer(429, fcm_error(429, "QUOTA_EXCEEDED"), {}, config_error)
    assert (result.outcome, result.retry_after, result.provider_fault) == (
        Verdict.RETRYABLE,
        60.0,
        False,
    )


def test_fcm_5xx_is_a_provider_fault() -> None:
    result = fcm.classify_answer(
        503, fcm_error(503, "UNAVAILABLE"), {"Retry-After": "5"}, config_error
    )
    assert (result.outcome, result.retry_after, result.provider_fault) == (
        Verdict.RETRYABLE,
        5.0,
        True,
    )


def test_fcm_other_400s_are_configuration_errors() -> None:
    result = fcm.classify_answer(
        400, fcm_error(400, "INVALID_ARGUMENT", "bad payload"), {}, config_error
    )
    assert result.outcome == Verdict.FAILED and "configuration" in (result.reason or "")


def test_apns_410_after_the_last_registration_is_a_dead_token() -> None:
    registered = datetime(2026, 1, 1, tzinfo=UTC)
    later = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert (
        apns.classify_answer("410", "Unregistered", later, registered, config_error).outcome
        == Verdict.TOKEN_DEAD
    )


def test_apns_410_older_than_the_last_registration_keeps_the_device() -> None:
    registered = datetime(2026, 2, 1, tzinfo=UTC)
    earlier = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert (
        apns.classify_answer("410", "Unregistered", earlier, registered, config_error).outcome
        == Verdict.FAILED
    )


def test_apns_bad_device_token_is_dead_and_5xx_a_provider_fault() -> None:
    now = datetime.now(UTC)
    assert (
        apns.classify_answer("400", "BadDeviceToken", None, now, config_error).outcome
        == Verdict.TOKEN_DEAD
    )
    assert apns.classify_answer("503", "ServiceUnavailable", None, now, config_error).provider_fault
    assert not apns.classify_answer(
        "429", "TooManyRequests", None, now, config_error
    ).provider_fault


def test_apns_provider_token_errors_are_configuration_errors() -> None:
    result = apns.classify_answer(
        "403", "InvalidProviderToken", None, datetime.now(UTC), config_error
    )
    assert "configuration" in (result.reason or "")


def web_push_refusal(status: int, headers: dict[str, str] | None = None) -> WebPushException:
    return WebPushException(
        "refused", response=SimpleNamespace(status=status, headers=headers or {})
    )


def test_web_push_404_and_410_are_dead_tokens() -> None:
    for status in (404, 410):
        assert (
            webpush.classify_error(web_push_refusal(status), config_error).outcome
            == Verdict.TOKEN_DEAD
        )


def test_web_push_redirects_are_failed_not_followed() -> None:
    for status in (301, 302, 307, 308):
        result = webpush.classify_error(web_push_refusal(status), config_error)
        assert result.outcome == Verdict.FAILED and "redirect" in (result.reason or "")


def test_web_push_429_honours_retry_after_and_5xx_is_a_provider_fault() -> None:
    limited = webpush.classify_error(web_push_refusal(429, {"Retry-After": "3"}), config_error)
    assert (limited.outcome, limited.retry_after, limited.provider_fault) == (
        Verdict.RETRYABLE,
        3.0,
        False,
    )
    assert webpush.classify_error(web_push_refusal(502), config_error).provider_fault


def test_web_push_vapid_mismatch_is_a_configuration_error() -> None:
    assert "configuration" in (
        webpush.classify_error(web_push_refusal(403), config_error).reason or ""
    )


def test_apns_provider_jwt_lives_within_apples_window() -> None:
    from aioapns.connection import JWTAuthorizationHeaderProvider

    assert 20 * 60 <= JWTAuthorizationHeaderProvider.TOKEN_TTL <= 60 * 60
