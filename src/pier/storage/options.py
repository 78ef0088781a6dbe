"""Storage options: endpoint, region, credentials and timeouts, from a spec or the AWS environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pier.errors import StorageConfigError
from pier.storage.redact import MASK, redact

# Spellings other tools use for the same option; a spec may use any of them.
_ALIASES = {
    "endpoint": "endpoint_url",
    "endpoint_url_s3": "endpoint_url",
    "region_name": "region",
    "access_key_id": "key",
    "aws_access_key_id": "key",
    "access_key": "key",
    "secret_access_key": "secret",
    "aws_secret_access_key": "secret",
    "secret_key": "secret",
    "session_token": "token",
    "aws_session_token": "token",
}

# Environment variable -> option, first one set wins for each option.
_ENV = (
    ("AWS_ENDPOINT_URL_S3", "endpoint_url"),
    ("AWS_ENDPOINT_URL", "endpoint_url"),
    ("AWS_REGION", "region"),
    ("AWS_DEFAULT_REGION", "region"),
    ("AWS_ACCESS_KEY_ID", "key"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
    ("AWS_SESSION_TOKEN", "token"),
    ("AWS_PROFILE", "profile"),
)


@dataclass(frozen=True, repr=False)
class StorageOptions:
    """How to reach a store. Credentials never appear in ``repr`` or ``str``.

    ``key``/``secret``/``token`` are the access key id, secret key and session token
    (S3 and OSS). ``timeout`` bounds connecting and each read, in seconds; ``retries``
    is the number of attempts per request. ``extra`` goes to the backend as keyword
    arguments (``project`` for GCS, ``user`` for HDFS, ...).
    """

    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    profile: str | None = None
    anon: bool = False
    timeout: float = 30.0
    retries: int = 3
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Specs and environments hand over text: coerce it once, here.
        try:
            object.__setattr__(self, "timeout", float(self.timeout))
            object.__setattr__(self, "retries", int(self.retries))
        except (TypeError, ValueError) as exc:
            raise StorageConfigError(
                f"storage timeout and retries must be numbers: {exc}", cause="invalid_option"
            ) from None
        anon: object = self.anon
        if isinstance(anon, str):
            object.__setattr__(self, "anon", anon.strip().lower() in ("1", "true", "yes"))
        object.__setattr__(self, "extra", dict(self.extra))
        if self.timeout <= 0:
            raise StorageConfigError(
                f"storage timeout must be positive, got {self.timeout}", cause="invalid_option"
            )
        if self.retries < 1:
            raise StorageConfigError(
                f"storage retries must be at least 1, got {self.retries}", cause="invalid_option"
            )

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> StorageOptions:
        """Options from the standard AWS variables, with ``overrides`` (a spec's own) winning.

        ``env`` defaults to ``os.environ``; an override of ``None`` leaves the variable's value.
        """
        environ = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, name in _ENV:
            if name not in values and environ.get(var):
                values[name] = environ[var]
        for name, value in normalize(overrides or {}).items():
            if value is not None:
                values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> StorageOptions:
        """A copy with some options changed (names and aliases as in ``from_env``)."""
        return dataclasses.replace(self, **normalize(changes))

    def secrets(self) -> tuple[str, ...]:
        """The credential values this object holds, for ``redact``."""
        values = [self.key, self.secret, self.token]
        values += [str(v) for v in self.extra.values() if isinstance(v, str)]
        return tuple(v for v in values if v)

    def redact(self, text: str) -> str:
        """``text`` without these credentials or any other recognizable secret."""
        return redact(text, self.secrets())

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("key", "secret", "token") and value is not None:
                shown.append(f"{f.name}={MASK!r}")
            elif f.name == "extra":
                masked = dict.fromkeys(value, MASK)
                shown.append(f"extra={masked!r}")
            elif isinstance(value, str):
                shown.append(f"{f.name}={redact(value)!r}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"StorageOptions({', '.join(shown)})"

    __str__ = __repr__


def normalize(values: Mapping[str, Any]) -> dict[str, Any]:
    """Map aliases to option names; reject unknown names without echoing their values."""
    known = {f.name for f in dataclasses.fields(StorageOptions)}
    out: dict[str, Any] = {}
    for raw, value in values.items():
        name = _ALIASES.get(raw.lower(), raw.lower())
        if name not in known:
            raise StorageConfigError(
                f"unknown storage option {raw!r}; known: {', '.join(sorted(known))}",
                cause="invalid_option",
            )
        out[name] = value
    return out
