"""The messages between the worker and the API, and the only place they are
(de)serialised.

- `ScoreChange`: one committed change of a key result's score or an objective's
  progress. It travels in two places in one JSON form (`to_json`/`from_json`):
  in a recalculation event's payload (`recalc.written`, the scores a service
  wrote itself, for the job to announce) and inside `ProgressChanged`.
- `ProgressChanged`: the worker's message after it commits a roll-up, on the
  organisation's `progress_channel`.
- `EventsRecorded`: the organisation's outbox events as the webhook dispatcher
  claims them (webhooks/dispatch.py, once per event, oldest first), on its
  `events_channel`; each a `RecordedEvent` with the payload webhooks carry.
- `AccessRevoked`: the API's message after it commits a token's revocation or a
  person's archiving, on `ACCESS_CHANNEL`, so every API process ends their
  subscriptions at once.

Every channel message is published after commit (outbox/after_commit.py): a
read made on receipt sees at least what it announces. `decode_org_message`
reads an organisation channel's message by the channel's kind.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okrgraph.domain.models.enums import Status, SubjectType

ACCESS_CHANNEL = "okr:access"
# What has a score or progress to announce.
PROGRESS_SUBJECTS = frozenset({SubjectType.KEY_RESULT, SubjectType.OBJECTIVE})


def progress_channel(org_id: uuid.UUID | str) -> str:
    """Redis pub/sub channel of an organisation's committed score changes."""
    return f"okr:org:{org_id}:progress"


def events_channel(org_id: uuid.UUID | str) -> str:
    """Redis pub/sub channel of an organisation's committed outbox events."""
    return f"okr:org:{org_id}:events"


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """The values a write put on a subject (`value`, `status`) and those it replaced."""

    subject_type: SubjectType  # KEY_RESULT or OBJECTIVE
    subject_id: uuid.UUID
    value: float
    status: Status
    previous_value: float
    previous_status: Status

    def to_json(self) -> dict[str, Any]:
        return {
            "subjectType": self.subject_type.value,
            "id": str(self.subject_id),
            "value": self.value,
            "status": self.status.value,
            "previousValue": self.previous_value,
            "previousStatus": self.previous_status.value,
        }

    @classmethod
    def from_json(cls, data: Any) -> ScoreChange | None:
        """None for anything this code did not write, or a subject without progress."""
        try:
            change = cls(
                SubjectType(data["subjectType"]),
                uuid.UUID(str(data["id"])),
                float(data["value"]),
                Status(data["status"]),
                float(data["previousValue"]),
                Status(data["previousStatus"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return change if change.subject_type in PROGRESS_SUBJECTS else None


@dataclass(frozen=True)
class ProgressChanged:
    """Every change of one organisation's scores in one committed roll-up.
    `through`: every event recorded up to then is included in the numbers."""

    org_id: uuid.UUID
    changes: tuple[ScoreChange, ...]
    through: datetime | None = None

    @property
    def channel(self) -> str:
        return progress_channel(self.org_id)

    def encode(self) -> str:
        return json.dumps(
            {
                "orgId": str(self.org_id),
                "through": self.through.isoformat() if self.through else None,
                "changes": [c.to_json() for c in self.changes],
            }
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> ProgressChanged:
        """The message, or ValueError/KeyError/TypeError for one this code did not
        write; changes it cannot read (another subject type, say) are left out."""
        data = json.loads(raw)
        through = data.get("through")
        changes = (ScoreChange.from_json(c) for c in data["changes"])
        return cls(
            org_id=uuid.UUID(data["orgId"]),
            changes=tuple(c for c in changes if c is not None),
            through=datetime.fromisoformat(through) if through else None,
        )


@dataclass(frozen=True)
class AccessRevoked:
    """Tokens or people that lost access (revoked, archived): their live
    subscriptions end in every API process."""

    org_id: uuid.UUID
    token_ids: frozenset[uuid.UUID] = frozenset()
    person_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def channel(self) -> str:
        return ACCESS_CHANNEL

    def encode(self) -> str:
        return json.dumps(
            {
                "orgId": str(self.org_id),
                "tokenIds": sorted(str(i) for i in self.token_ids),
                "personIds": sorted(str(i) for i in self.person_ids),
            }
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> AccessRevoked:
        data = json.loads(raw)
        return cls(
            org_id=uuid.UUID(data["orgId"]),
            token_ids=frozenset(uuid.UUID(i) for i in data.get("tokenIds", ())),
            person_ids=frozenset(uuid.UUID(i) for i in data.get("personIds", ())),
        )


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One committed outbox event as integrations see it: `id` is the event's (a
    webhook's `webhook-id`), `data` the payload a webhook carries as its `data`."""

    id: uuid.UUID
    type: str
    subject_type: SubjectType | None
    subject_id: uuid.UUID | None
    created_at: datetime
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "subjectType": self.subject_type.value if self.subject_type else None,
            "subjectId": str(self.subject_id) if self.subject_id else None,
            "createdAt": self.created_at.isoformat(),
            "data": self.data,
        }

    @classmethod
    def from_json(cls, data: Any) -> RecordedEvent:
        subject_type, subject_id = data.get("subjectType"), data.get("subjectId")
        payload = data["data"]
        if not isinstance(payload, dict):
            raise TypeError("an event's data is an object")
        return cls(
            id=uuid.UUID(str(data["id"])),
            type=str(data["type"]),
            subject_type=SubjectType(subject_type) if subject_type else None,
            subject_id=uuid.UUID(str(subject_id)) if subject_id else None,
            created_at=datetime.fromisoformat(data["createdAt"]),
            data=payload,
        )


@dataclass(frozen=True)
class EventsRecorded:
    """The events of one organisation one dispatch claimed, oldest first: one message
    per claimed batch, so a burst is one message in each subscriber's backlog."""

    org_id: uuid.UUID
    events: tuple[RecordedEvent, ...]

    @property
    def channel(self) -> str:
        return events_channel(self.org_id)

    def encode(self) -> str:
        return json.dumps(
            {"orgId": str(self.org_id), "events": [e.to_json() for e in self.events]},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> EventsRecorded:
        """The message, or ValueError/KeyError/TypeError for one this code did not write."""
        data = json.loads(raw)
        return cls(
            org_id=uuid.UUID(str(data["orgId"])),
            events=tuple(RecordedEvent.from_json(e) for e in data["events"]),
        )


OrgMessage = ProgressChanged | EventsRecorded
_ORG_MESSAGES: dict[str, type[ProgressChanged] | type[EventsRecorded]] = {
    "progress": ProgressChanged,
    "events": EventsRecorded,
}


def decode_org_message(channel: str, raw: str | bytes) -> OrgMessage:
    """The message on an organisation's channel (`okr:org:<id>:<kind>`), read as its
    kind says; ValueError for a channel of no known kind."""
    prefix, _, kind = channel.rpartition(":")
    message_type = _ORG_MESSAGES.get(kind)
    if not prefix.startswith("okr:org:") or message_type is None:
        raise ValueError(f"no messages are known on {channel}")
    return message_type.decode(raw)
