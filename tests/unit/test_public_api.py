"""The names Pier exports are a promise: adding or removing one is a decision, made here."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = {
    "pier": ["__version__"],
    "pier.client": [
        "PierAPIError",
        "PierClient",
        "PierConnectionError",
        "ServiceFailed",
        "WaitTimeout",
        "guess_protocol",
    ],
    "pier.errors": [
        "AlreadyExists",
        "ArchiveError",
        "ConfigError",
        "ErrorCode",
        "FailedPrecondition",
        "InternalError",
        "InvalidInput",
        "MethodNotAllowed",
        "ModelLoadError",
        "NotFound",
        "PayloadTooLarge",
        "PierError",
        "ResourceExhausted",
        "SpecError",
        "StorageAccessDenied",
        "StorageBackendMissing",
        "StorageConfigError",
        "StorageError",
        "StorageIntegrityError",
        "StorageNotFound",
        "StorageTimeout",
        "StorageUnavailable",
        "StoreError",
        "Unauthenticated",
        "Unavailable",
        "Unsupported",
    ],
}


@pytest.mark.parametrize("module", list(PUBLIC))
def test_all_is_exactly_the_public_names(module: str) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == PUBLIC[module]
    assert len(set(loaded.__all__)) == len(loaded.__all__)
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.__all__ names {name}, which it lacks"


def test_every_error_class_is_exported() -> None:
    errors = importlib.import_module("pier.errors")
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and value.__module__ == errors.__name__
        and not name.startswith("_")
    }
    assert defined <= set(errors.__all__)
