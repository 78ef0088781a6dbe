"""Credentials never survive ``redact``: URLs, query strings, reprs, JSON, headers, key ids."""

from __future__ import annotations

import pytest

from pier.storage import redact


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("https://alice:hunter22@host/m", "hunter22", "host/m"),
        ("s3://AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI@bucket/k", "wJalrXUtnFEMI", "bucket/k"),
        ("https://ghp_tokenvalue123@github.example/x", "ghp_tokenvalue123", "github.example/x"),
        (
            "https://b.s3.amazonaws.com/m?X-Amz-Credential=AK%2F2024&X-Amz-Signature=deadbeef99&v=2",
            "deadbeef99",
            "v=2",
        ),
        ("https://h/m?Signature=sig-value-1&Expires=1", "sig-value-1", "Expires=1"),
        ("https://h/m?sig=zzz-sas-sig&sv=2020", "zzz-sas-sig", "sv=2020"),
        ("https://h/m?OSSAccessKeyId=osskey123&token=tok-abc", "tok-abc", "https://h/m"),
        ("{'key': 'AKIAXXXXXXXXXXXXXXXX', 'secret': 's3cr3t-value'}", "s3cr3t-value", "'key'"),
        ('{"aws_secret_access_key": "json-secret-1", "region": "eu"}', "json-secret-1", '"eu"'),
        ("S3FileSystem(key=plain-key-1, secret=plain-secret-1)", "plain-secret-1", "S3FileSystem"),
        ("AWS_SECRET_ACCESS_KEY=env-secret-2 AWS_REGION=eu", "env-secret-2", "AWS_REGION=eu"),
        ("password=pa55word; user=bob", "pa55word", "user=bob"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x", "AWS4-HMAC-SHA256", "Authorization"),
        ("access key AKIAIOSFODNN7EXAMPLE was refused", "AKIAIOSFODNN7EXAMPLE", "was refused"),
    ],
)
def test_redact(text: str, gone: str, kept: str) -> None:
    out = redact(text)
    assert gone not in out
    assert kept in out
    assert "***" in out


def test_plain_text_is_untouched() -> None:
    for text in (
        "s3://bucket/models/resnet/1",
        "monkey=1 turkey=2",
        "NoSuchKey: the key does not exist",
    ):
        assert redact(text) == text


def test_explicit_secrets_are_removed_wherever_they_appear() -> None:
    assert redact("got kitten-secret back", ["kitten-secret", None, ""]) == "got *** back"
    assert redact("a b c", ["b"]) == "a b c"  # too short to be a credential
