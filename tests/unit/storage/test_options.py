"""Storage options: the AWS environment, overrides that win, aliases, and no secret in a repr."""

from __future__ import annotations

import pytest

from pier.errors import StorageConfigError
from pier.storage import StorageOptions

ENV = {
    "AWS_ENDPOINT_URL": "http://generic:9000",
    "AWS_ENDPOINT_URL_S3": "http://s3-only:9000",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIAENVKEYID0000000",
    "AWS_SECRET_ACCESS_KEY": "env-secret-value",
    "AWS_SESSION_TOKEN": "env-session-token",
    "AWS_PROFILE": "dev",
}


def test_from_env_reads_the_standard_variables() -> None:
    o = StorageOptions.from_env(env=ENV)
    assert o.endpoint_url == "http://s3-only:9000"  # the S3-specific one wins
    assert o.region == "eu-west-1"
    assert (o.key, o.secret, o.token, o.profile) == (
        "AKIAENVKEYID0000000",
        "env-secret-value",
        "env-session-token",
        "dev",
    )
    assert StorageOptions.from_env(env={**ENV, "AWS_REGION": "ap-south-1"}).region == "ap-south-1"
    assert StorageOptions.from_env(env={}) == StorageOptions()


def test_overrides_win_and_none_keeps_the_environment() -> None:
    o = StorageOptions.from_env(
        {"endpoint": "http://spec:9000", "aws_access_key_id": "spec-key", "secret": None},
        env=ENV,
    )
    assert o.endpoint_url == "http://spec:9000"
    assert o.key == "spec-key"
    assert o.secret == "env-secret-value"


def test_text_values_are_coerced() -> None:
    o = StorageOptions.from_env({"timeout": "2.5", "retries": "1", "anon": "true"}, env={})
    assert (o.timeout, o.retries, o.anon) == (2.5, 1, True)


@pytest.mark.parametrize(
    "overrides", [{"timeout": 0}, {"retries": 0}, {"timeout": "soon"}, {"colour": "blue"}]
)
def test_invalid_options(overrides: dict[str, object]) -> None:
    with pytest.raises(StorageConfigError):
        StorageOptions.from_env(overrides, env={})


def test_unknown_option_does_not_echo_its_value() -> None:
    with pytest.raises(StorageConfigError) as info:
        StorageOptions.from_env({"secret_token": "do-not-print-me"}, env={})
    assert "do-not-print-me" not in str(info.value)


def test_repr_hides_credentials() -> None:
    o = StorageOptions.from_env(
        {"endpoint_url": "https://u:pw-in-url@minio:9000", "extra": {"password": "xyz-secret"}},
        env=ENV,
    )
    text = repr(o) + str(o)
    for secret in (
        "AKIAENVKEYID0000000",
        "env-secret-value",
        "env-session-token",
        "pw-in-url",
        "xyz-secret",
    ):
        assert secret not in text
    assert "minio:9000" in text and "eu-west-1" in text and "password" in text


def test_redact_removes_its_own_secrets() -> None:
    o = StorageOptions(key="my-key-id", secret="my-secret")
    assert o.redact("failed with my-secret and my-key-id") == "failed with *** and ***"


def test_replace() -> None:
    o = StorageOptions().replace(region_name="us-west-2", timeout=3)
    assert (o.region, o.timeout) == ("us-west-2", 3.0)
