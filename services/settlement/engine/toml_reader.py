"""A strict reader over parsed TOML: every error names the file and the key."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import PolicyError

UNLIMITED = "unlimited"


def read_toml(path: Path) -> TomlReader:
    """Parse a TOML file; syntax errors become PolicyError naming the file."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML ({exc})", file=str(path)) from exc
    except OSError as exc:
        raise PolicyError(f"cannot read ({exc.strerror})", file=str(path)) from exc
    return TomlReader(data, file=str(path))


class TomlReader:
    """Typed, validated access to one TOML table; `finish()` rejects keys nobody read."""

    def __init__(self, data: dict[str, Any], *, file: str, path: str = "") -> None:
        self._data = data
        self.file = file
        self.path = path
        self._used: set[str] = set()
        self._children: list[TomlReader] = []

    # -------------------------------------------------------------- plumbing

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> PolicyError:
        return PolicyError(message, file=self.file, key=self.key_path(key) if key is not None else self.path or None)

    def has(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def _get(self, key: str) -> Any:
        if key not in self._data:
            raise self.error(key, "missing key")
        self._used.add(key)
        return self._data[key]

    def finish(self) -> None:
        """Fail on keys that no reader consumed (typos must not pass silently)."""
        unknown = sorted(set(self._data) - self._used)
        if unknown:
            raise self.error(unknown[0], f"unknown key (expected one of: {', '.join(sorted(self._used)) or '-'})")
        for child in self._children:
            child.finish()

    # -------------------------------------------------------------- tables

    def table(self, key: str) -> TomlReader:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self.error(key, "expected a table")
        child = TomlReader(value, file=self.file, path=self.key_path(key))
        self._children.append(child)
        return child

    def tables(self, key: str) -> list[TomlReader]:
        """An array of tables ([[key]])."""
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "expected an array of tables")
        children = [TomlReader(v, file=self.file, path=f"{self.key_path(key)}[{i}]") for i, v in enumerate(value)]
        self._children.extend(children)
        return children

    # -------------------------------------------------------------- scalars

    def amount(self, key: str) -> Decimal:
        """A non-negative money amount written as a string ("300.00")."""
        return self._decimal(key, self._get(key), what="amount", places=2, upper=None)

    def amount_or_unlimited(self, key: str) -> Decimal | None:
        """An amount, or None when written "unlimited"."""
        raw = self._get(key)
        if raw == UNLIMITED:
            return None
        return self._decimal(key, raw, what="amount", places=2, upper=None)

    def ratio(self, key: str) -> Decimal:
        """A ratio 0..1 written as a string ("0.70")."""
        return self._decimal(key, self._get(key), what="ratio", places=None, upper=Decimal(1))

    def _decimal(self, key: str, raw: Any, *, what: str, places: int | None, upper: Decimal | None) -> Decimal:
        if not isinstance(raw, str):
            raise self.error(key, f'{what} must be a string like "300.00", got {type(raw).__name__}')
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.error(key, f"{what} {raw!r} is not a number") from None
        if not value.is_finite():
            raise self.error(key, f"{what} {raw!r} is not finite")
        if value < 0:
            raise self.error(key, f"{what} {raw!r} is negative")
        if upper is not None and value > upper:
            raise self.error(key, f"{what} {raw!r} is outside 0..{upper}")
        if places is not None and value.as_tuple().exponent < -places:  # type: ignore[operator]
            raise self.error(key, f"{what} {raw!r} has more than {places} decimals")
        return value

    def integer(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._get(key)
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise self.error(key, "expected an integer")
        if raw < minimum or (maximum is not None and raw > maximum):
            raise self.error(key, f"{raw} is outside {minimum}..{maximum if maximum is not None else ''}")
        return raw

    def boolean(self, key: str) -> bool:
        raw = self._get(key)
        if not isinstance(raw, bool):
            raise self.error(key, "expected true or false")
        return raw

    def string(self, key: str, *, choices: Iterable[str] | None = None) -> str:
        raw = self._get(key)
        if not isinstance(raw, str) or not raw:
            raise self.error(key, "expected a non-empty string")
        if choices is not None and raw not in set(choices):
            raise self.error(key, f"{raw!r} is not one of {', '.join(sorted(choices))}")
        return raw

    def strings(self, key: str) -> tuple[str, ...]:
        raw = self._get(key)
        if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
            raise self.error(key, "expected a non-empty array of strings")
        return tuple(raw)

    def day(self, key: str) -> date:
        """A date: TOML local date (2022-01-01) or a string "2022-01-01"."""
        raw = self._get(key)
        if isinstance(raw, date) and not hasattr(raw, "hour"):
            return raw
        if isinstance(raw, str):
            try:
                return date.fromisoformat(raw)
            except ValueError:
                pass
        raise self.error(key, f"expected a date YYYY-MM-DD, got {raw!r}")
