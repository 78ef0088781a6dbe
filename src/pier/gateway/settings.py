"""The gateway's settings: limits, failure handling, pools and timeouts, built once at the entry point.

Every field can be set as ``PIER_GATEWAY_<FIELD>`` (``GatewaySettings.from_env``); the entry
points (``pier up``, ``python -m pier.gateway``) build the object and pass it to ``Gateway``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "PIER_GATEWAY_"


class GatewaySettings(BaseModel):
    """How the gateway bounds requests, treats failing replicas and keeps connections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        le=2**40,
        description="Largest request body accepted, in bytes; larger ones get 413.",
    )
    max_request_target: int = Field(
        default=8 * 1024,
        ge=64,
        le=1024 * 1024,
        description="Longest request target (path and query), in bytes; longer ones get 414.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Most bytes of request headers (names and values); more get 431.",
    )
    retry: bool = Field(
        default=True,
        description="Send a request to another replica once when its connection fails "
        "before any reply byte.",
    )
    eject_after: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Consecutive failures after which a replica is ejected.",
    )
    eject_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Seconds an ejected replica is left out of balancing.",
    )
    connect_timeout: float = Field(
        default=2.0, gt=0, le=300, description="Seconds to wait for a connection to a replica."
    )
    request_timeout: float = Field(
        default=120.0,
        gt=0,
        le=86400,
        description="Seconds a request may take, from fully read to fully answered; then 504.",
    )
    max_response_head: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest response head a replica may send, in bytes; more is a 502.",
    )
    idle_connections: int = Field(
        default=512, ge=0, le=65536, description="Idle keep-alive connections kept per replica."
    )
    idle_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds an idle replica connection is kept; shorter than the replica's "
        "own keep-alive timeout, so the gateway closes first and never races it.",
    )
    max_pipelined: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Requests read ahead of the one being answered on a client connection "
        "before reading pauses.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """Defaults overridden by ``PIER_GATEWAY_<FIELD>`` variables; a misspelled one is an error.

        Raises ``ValueError`` naming the variable and what is wrong with it.
        """
        fields = cls.model_fields
        values: dict[str, str] = {}
        for key, value in environ.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in fields:
                close = difflib.get_close_matches(name, list(fields), n=1)
                hint = f"; did you mean {ENV_PREFIX}{close[0].upper()}?" if close else ""
                raise ValueError(f"unknown gateway setting {key}{hint}")
            values[name] = value
        try:
            return cls.model_validate(values)
        except ValidationError as exc:  # name the variable, not the field
            problems = [
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            ]
            raise ValueError("; ".join(problems)) from None
