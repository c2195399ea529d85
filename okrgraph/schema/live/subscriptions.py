"""Live updates over graphql-transport-ws, relayed from the worker's Redis channel."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from okrgraph.domain.live import progress_channel
from okrgraph.schema.context import Info
from okrgraph.schema.enums import Status
from okrgraph.schema.errors import ClientError
from okrgraph.schema.node import to_global_id
from okrgraph.schema.permissions import CanRead, require_principal

SUBJECT_TYPES = {"OBJECTIVE": "Objective", "KEY_RESULT": "KeyResult"}


@strawberry.type(description="A score or progress that changed (committed).")
class ProgressChange:
    id: strawberry.ID = strawberry.field(description="Global id of the objective or key result.")
    subject_type: str = strawberry.field(description="`Objective` or `KeyResult`.")
    value: float = strawberry.field(description="New score or progress, 0..1.")
    status: Status = strawberry.field(description="New pace health.")
    previous_value: float = strawberry.field(description="Value before.")
    previous_status: Status = strawberry.field(description="Status before.")


def changes_in(message: dict[str, Any], wanted: set[str] | None) -> list[ProgressChange]:
    out = []
    for change in message.get("changes", []):
        type_name = SUBJECT_TYPES.get(change["subjectType"])
        if type_name is None:
            continue
        global_id = to_global_id(type_name, uuid.UUID(change["id"]))
        if wanted is not None and global_id not in wanted:
            continue
        out.append(
            ProgressChange(
                id=global_id,
                subject_type=type_name,
                value=change["value"],
                status=Status(change["status"]),
                previous_value=change["previousValue"],
                previous_status=Status(change["previousStatus"]),
            )
        )
    return out


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Scores and progress of your organisation as the worker commits them; "
        "`ids` narrows to some objectives or key results.",
    )
    async def progress_changed(
        self, info: Info, ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[ProgressChange, None]:
        principal = require_principal(info)
        redis = info.context.queue
        if redis is None:
            raise ClientError("Live updates are unavailable: Redis is not reachable.")
        wanted = {str(i) for i in ids} if ids is not None else None
        pubsub = redis.pubsub()
        await pubsub.subscribe(progress_channel(principal.org_id))
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                for change in changes_in(json.loads(message["data"]), wanted):
                    yield change
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()
