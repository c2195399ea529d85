"""Errors a domain service raises for the caller to map (to GraphQL payload errors).

Raised before anything is written, or inside the transaction the edge rolls back:
bad input never changes anything.

Every error carries an `ErrorCode` (the GraphQL enum `UserErrorCode`): what a
client branches on, so no client parses a message. A raise site names the rule
it enforces (`Conflict("...", ErrorCode.ALIGNMENT_LOOP)`); a class's generic code
(`INVALID`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT`) is only the fallback.
"""

from __future__ import annotations

from okrgraph.domain.models.enums import Described


class ErrorCode(Described):
    """Why a change was refused; each member's description is the documented rule."""

    # Fallbacks, one per error type
    INVALID = "INVALID", "The input breaks a rule that has no more specific code."
    NOT_FOUND = "NOT_FOUND", "No such object in your organisation."
    FORBIDDEN = (
        "FORBIDDEN",
        (
            "Your role does not allow this change (owners, team leads and admins edit "
            "what is theirs; see the mutation's description)."
        ),
    )
    CONFLICT = "CONFLICT", "The change clashes with existing data."

    # Input values
    REQUIRED = "REQUIRED", "A value that must be given is missing or empty."
    TEXT_TOO_LONG = "TEXT_TOO_LONG", "A string is longer than its documented bound."
    UNSTORABLE_TEXT = "UNSTORABLE_TEXT", "A string holds NUL or an unpaired surrogate."
    VALUE_OUT_OF_RANGE = (
        "VALUE_OUT_OF_RANGE",
        (
            "A number, weight, date or time lies outside its documented bound (docs/limits.md), "
            "or would carry a date past 2999-12-31."
        ),
    )
    TIME_ZONE_REQUIRED = "TIME_ZONE_REQUIRED", "A date-time was given without a time zone."
    IN_THE_FUTURE = "IN_THE_FUTURE", "A measurement or check-in is dated in the future."
    NOT_IN_THE_FUTURE = "NOT_IN_THE_FUTURE", "An expiry must lie in the future."
    INVALID_FORMAT = (
        "INVALID_FORMAT",
        (
            "A value is not of its form: an e-mail address, an http(s) URL, a slug, a scope, "
            "an event type."
        ),
    )
    INVALID_ID = "INVALID_ID", "An id is not a global id of the type the field takes."
    INVALID_CURSOR = "INVALID_CURSOR", "An `after` cursor does not belong to this list."
    EXACTLY_ONE_OF = (
        "EXACTLY_ONE_OF",
        (
            "Give exactly one of two alternatives (e.g. parentObjectiveId or parentKeyResultId; "
            "a value or clearing it)."
        ),
    )
    TOO_MANY = "TOO_MANY", "More items than one call (or one person) may have."
    INVALID_STATE = (
        "INVALID_STATE",
        (
            "A state that this change cannot start in (a new objective is DRAFT or ACTIVE, a "
            "new or next cycle PLANNING or ACTIVE)."
        ),
    )
    CONSTRAINT_VIOLATED = (
        "CONSTRAINT_VIOLATED",
        ("The input breaks a rule kept by the database; the message names it."),
    )

    # Key results, check-ins and KPIs
    INVALID_TARGET = (
        "INVALID_TARGET",
        (
            "A key result's target does not fit its kind (INCREASE above start, DECREASE "
            "below start, a milestone's is always 1)."
        ),
    )
    DRIVER_MISMATCH = (
        "DRIVER_MISMATCH",
        ("A check-in on a key result whose progress comes from a KPI or from aligned objectives."),
    )
    ALREADY_CORRECTED = (
        "ALREADY_CORRECTED",
        ("The check-in was already corrected; correct the correction instead."),
    )
    WRONG_KEY_RESULT = "WRONG_KEY_RESULT", "A corrected check-in belongs to another key result."
    CANCELLED = "CANCELLED", "The key result is cancelled."
    THRESHOLD_ORDER = (
        "THRESHOLD_ORDER",
        ("A KPI's critical threshold lies on the wrong side of its warning threshold."),
    )
    KEY_RESULT_ALREADY_MEASURED = (
        "KEY_RESULT_ALREADY_MEASURED",
        ("The key result is measured by another KPI; unlink that one first."),
    )
    ARCHIVED = "ARCHIVED", "The person, team or KPI is archived."

    # Objectives, alignments and cycles
    ALIGNMENT_LOOP = (
        "ALIGNMENT_LOOP",
        (
            "The alignment would make a loop (an objective supporting itself or one of its "
            "own supporters)."
        ),
    )
    CYCLE_MISMATCH = (
        "CYCLE_MISMATCH",
        ("A parent must be in the child's cycle or in a cycle containing it."),
    )
    CYCLE_CLOSED = (
        "CYCLE_CLOSED",
        (
            "The cycle is being graded or is closed: its objectives, key results and scores "
            "are frozen."
        ),
    )
    CYCLE_NOT_STARTED = "CYCLE_NOT_STARTED", "Only a started cycle closes."
    CYCLE_NOT_GRADED = (
        "CYCLE_NOT_GRADED",
        ("Reflections are written once the cycle is being graded or is closed."),
    )
    INVALID_TRANSITION = (
        "INVALID_TRANSITION",
        ("A cycle moves only forward: PLANNING -> ACTIVE -> GRADING -> CLOSED."),
    )
    INVALID_PERIOD = (
        "INVALID_PERIOD",
        (
            "A cycle's dates do not fit: it ends before it starts, lies outside its parent "
            "cycle, or a next cycle starts before this one ends."
        ),
    )

    # Organisation and people
    ALREADY_EXISTS = (
        "ALREADY_EXISTS",
        ("Something with that name, e-mail, slug or pair already exists."),
    )
    TEAM_LOOP = "TEAM_LOOP", "A team cannot sit under itself or one of its own sub-teams."
    SELF_CHANGE = "SELF_CHANGE", "Admins cannot demote or archive themselves."

    # Tokens and permissions
    MISSING_SCOPE = (
        "MISSING_SCOPE",
        (
            "The token lacks a scope this needs (a read-only token writes nothing), or would "
            "grant scopes the calling token lacks."
        ),
    )
    VIEWER_READ_ONLY = "VIEWER_READ_ONLY", "Viewers change nothing of the organisation's."
    ADMIN_REQUIRED = "ADMIN_REQUIRED", "Only an admin with an `admin`-scoped token may."
    NOT_OWNER = (
        "NOT_OWNER",
        ("Only the owner, a lead of the owning team or an admin may change this."),
    )
    PERSON_REQUIRED = "PERSON_REQUIRED", ("This belongs to people; the token is an integration's.")
    SCOPE_NOT_ALLOWED = "SCOPE_NOT_ALLOWED", "The person's org role may not hold that scope."
    IDEMPOTENCY_KEY_REUSED = (
        "IDEMPOTENCY_KEY_REUSED",
        ("The idempotency key was used for a different request."),
    )

    # Webhooks
    SECRET_MISSING = (
        "SECRET_MISSING",
        ("The webhook endpoint has no signing secret; rotate one before enabling it."),
    )
    URL_NOT_ALLOWED = (
        "URL_NOT_ALLOWED",
        (
            "A webhook URL's host is, or resolves to, a loopback, private, link-local, "
            "shared, multicast, reserved or unspecified address, or does not resolve; "
            "refused unless the organisation allows private URLs (setWebhookPolicy)."
        ),
    )
    ENDPOINT_DISABLED = (
        "ENDPOINT_DISABLED",
        ("The webhook endpoint is disabled: enable it before redelivering to it."),
    )


class DomainError(Exception):
    """Base: a message safe to show to the client, and the code clients branch on."""

    default_code = ErrorCode.INVALID

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class ValidationFailed(DomainError):
    """Input breaks a rule; `field` is the input path (e.g. `input.target`)."""

    def __init__(self, field: str, message: str, code: ErrorCode = ErrorCode.INVALID) -> None:
        super().__init__(message, code)
        self.field = field


class NotFound(DomainError):
    """No such row in the caller's organisation (never says whether it exists elsewhere)."""

    default_code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")
        self.kind = kind
        self.id = id


class Forbidden(DomainError):
    """The caller may not do this."""

    default_code = ErrorCode.FORBIDDEN


class Conflict(DomainError):
    """The change clashes with the current state (a loop, a duplicate, a closed cycle)."""

    default_code = ErrorCode.CONFLICT
