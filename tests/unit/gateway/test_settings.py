"""Gateway settings: defaults, PIER_GATEWAY_* variables, and clear errors for bad ones."""

from __future__ import annotations

import pytest

from pier.gateway import GatewaySettings


def test_defaults_without_variables_and_other_variables_ignored() -> None:
    settings = GatewaySettings.from_env({"PATH": "/bin", "PIER_HOME": "/tmp/x"})
    assert settings == GatewaySettings()
    assert settings.max_request_target == 8 * 1024
    assert settings.max_header_bytes == 64 * 1024
    assert settings.max_body == 64 * 1024 * 1024


def test_variables_override_the_defaults() -> None:
    settings = GatewaySettings.from_env(
        {
            "PIER_GATEWAY_MAX_BODY": "1000",
            "PIER_GATEWAY_RETRY": "false",
            "PIER_GATEWAY_REQUEST_TIMEOUT": "2.5",
        }
    )
    assert (settings.max_body, settings.retry, settings.request_timeout) == (1000, False, 2.5)


def test_a_misspelled_variable_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(
        ValueError, match=r"PIER_GATEWAY_MAX_BODDY; did you mean PIER_GATEWAY_MAX_BODY\?"
    ):
        GatewaySettings.from_env({"PIER_GATEWAY_MAX_BODDY": "10"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIER_GATEWAY_MAX_BODY", "lots"),
        ("PIER_GATEWAY_MAX_REQUEST_TARGET", "1"),  # below what any request needs
        ("PIER_GATEWAY_EJECT_AFTER", "0"),
        ("PIER_GATEWAY_REQUEST_TIMEOUT", "1e308"),
        ("PIER_GATEWAY_MAX_HEADER_BYTES", "9" * 400),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: ") as info:
        GatewaySettings.from_env({name: value})
    assert len(str(info.value)) < 200
