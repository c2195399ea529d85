"""Errors a domain service raises for the caller to map (to GraphQL payload errors).

Raised before anything is written, or inside the transaction the edge rolls back:
bad input never changes anything.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base: a message safe to show to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    """Input breaks a rule; `field` is the input path (e.g. `input.target`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    """No such row in the caller's organisation (never says whether it exists elsewhere)."""

    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")
        self.kind = kind
        self.id = id


class Forbidden(DomainError):
    """The caller may not do this."""


class Conflict(DomainError):
    """The change clashes with the current state (a loop, a duplicate, a closed cycle)."""
