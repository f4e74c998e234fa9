"""Field checks shared by the config dataclasses; each raises ConfigError naming the field."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from .errors import ConfigError


def check_type(field: str, value: Any, kind: type | tuple[type, ...]) -> None:
    # bool is an int in Python; a width of True is a mistake, not 1.
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(field, f"expected {_kind_name(kind)}, got a bool ({value!r})")
    if not isinstance(value, kind):
        raise ConfigError(field, f"expected {_kind_name(kind)}, got {type(value).__name__} ({value!r})")


def _kind_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(field, f"{value!r} is not allowed; choose one of {allowed}")


def check_int(field: str, value: Any, low: int, high: int) -> None:
    check_type(field, value, int)
    if not low <= value <= high:
        raise ConfigError(field, f"{value} is outside the allowed range [{low}, {high}]")


def check_float(field: str, value: Any, low: float, high: float) -> None:
    check_type(field, value, (int, float))
    if not low <= value <= high:
        raise ConfigError(field, f"{value} is outside the allowed range [{low}, {high}]")


def check_tuple(field: str, value: Any, length: int) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise ConfigError(field, f"expected a list of {length} values, got {type(value).__name__} ({value!r})")
    if len(value) != length:
        raise ConfigError(field, f"expected {length} values, got {len(value)} ({list(value)!r})")
    return tuple(value)


def check_divides(field: str, divisor: int, width: int, what: str) -> None:
    if divisor <= 0 or width % divisor:
        raise ConfigError(field, f"{divisor} does not divide {what} ({width})")


def check_known_keys(section: str, data: dict, known: Sequence[str]) -> None:
    if not isinstance(data, dict):
        raise ConfigError(section, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}", f"unknown key; known keys are {sorted(known)}")
