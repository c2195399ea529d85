"""The messages between the worker and the API, and the only place they are
(de)serialised.

- `ScoreChange`: one committed change of a key result's score or an objective's
  progress. It travels in two places in one JSON form (`to_json`/`from_json`):
  in a recalculation event's payload (`recalc.written`, the scores a service
  wrote itself, for the job to announce) and inside `ProgressChanged`.
- `ProgressChanged`: the worker's message after it commits a roll-up, on the
  organisation's `progress_channel`.
- `AccessRevoked`: the API's message after it commits a token's revocation or a
  person's archiving, on `ACCESS_CHANNEL`, so every API process ends their
  subscriptions at once.

Both channel messages are published after commit (outbox/after_commit.py): a
read made on receipt sees at least what they announce.
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
