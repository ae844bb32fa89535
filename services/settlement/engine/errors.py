"""Exceptions of the policy engine; each carries a stable UPPER_SNAKE code."""

from __future__ import annotations


class EngineError(Exception):
    """Base class; `code` is stable and safe to show to HIS vendors."""

    code = "ENGINE_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class PolicyError(EngineError):
    """A policy or catalogue file is missing, malformed or inconsistent."""

    code = "INVALID_POLICY"

    def __init__(self, message: str, *, file: str, key: str | None = None) -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + message)
        self.file = file
        self.key = key


class PolicyNotFound(EngineError):
    """No policy version is in force for a region on a date."""

    code = "POLICY_NOT_FOUND"


class ClaimError(EngineError):
    """The claim cannot be adjudicated as given (e.g. a pharmacy claim without prescriber)."""

    code = "INVALID_CLAIM"


class InvariantViolation(EngineError):
    """An invariant of DOMAIN §12 failed: a bug, never a user error."""

    code = "INVARIANT_VIOLATED"
