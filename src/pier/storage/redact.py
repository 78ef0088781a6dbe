"""Remove credentials from text before it reaches a log line, an error or a repr."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# Names whose values are secrets (or sign a request) wherever they appear as
# ``name=value`` (query strings, kwargs reprs) or ``'name': 'value'`` (dict reprs, JSON).
_SECRET_NAMES = (
    "aws_secret_access_key",
    "aws_session_token",
    "aws_access_key_id",
    "secret_access_key",
    "secret_key",
    "access_key_id",
    "access_key",
    "client_secret",
    "session_token",
    "security_token",
    "access_token",
    "refresh_token",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "awsaccesskeyid",
    "ossaccesskeyid",
    "googleaccessid",
    "signature",
    "credential",
    "password",
    "passwd",
    "secret",
    "token",
    "sig",
    "key",
)
_NAMES = "|".join(re.escape(n) for n in _SECRET_NAMES)

# user:password@ (or a bare token@) in a URL authority.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s?#]+@")
# name=value: query strings, kwargs reprs, env-style text. The name must not be the tail
# of a longer word ("monkey=1" stays).
_ASSIGN = re.compile(
    rf"(?P<name>(?<![\w-])(?:{_NAMES}))(?P<sep>\s*=\s*)(?P<q>['\"]?)(?P<value>[^'\"\s&,;)}}\]]+)",
    re.IGNORECASE,
)
# 'name': 'value' and "name": "value" (dict reprs and JSON).
_MAPPING = re.compile(
    rf"(?P<name>['\"](?:{_NAMES})['\"])(?P<sep>\s*:\s*)(?P<q>['\"])(?P<value>[^'\"]*)(?P=q)",
    re.IGNORECASE,
)
# Authorization headers and AWS access key ids that travel without a name.
_AUTHORIZATION = re.compile(
    r"(?P<name>authorization['\"]?\s*[:=]\s*['\"]?)(?P<value>[^'\"\n,}]+)", re.IGNORECASE
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{12,}\b")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with credentials replaced by ``***``.

    ``secrets`` are exact values to remove as well (the key and secret a caller holds),
    so they vanish even where they appear without a telltale name.
    """
    for secret in secrets:
        # Short values would blank out ordinary words; real credentials are longer.
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _MAPPING.sub(rf"\g<name>\g<sep>\g<q>{MASK}\g<q>", text)
    text = _ASSIGN.sub(rf"\g<name>\g<sep>\g<q>{MASK}", text)
    text = _AUTHORIZATION.sub(rf"\g<name>{MASK}", text)
    return _AWS_KEY_ID.sub(MASK, text)
