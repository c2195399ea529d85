"""`node(id:)` and `nodes(ids:)`: any object by its global id, in the caller's org only."""

from __future__ import annotations

import asyncio

import strawberry

from okrgraph.schema.context import Info
from okrgraph.schema.errors import ClientError
from okrgraph.schema.limits import MAX_NODES
from okrgraph.schema.node import NODE_KINDS, Node, from_global_id
from okrgraph.schema.permissions import CanRead


async def _resolve(info: Info, global_id: str) -> Node | None:
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] not in NODE_KINDS:
        return None
    kind = NODE_KINDS[parsed[0]]
    row = await info.context.loaders.by_id(kind.model).load(parsed[1])
    if row is None or (kind.visible and not kind.visible(info.context.principal, row)):
        return None
    return kind.build(row)


@strawberry.type
class NodeQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Any object by global id; null when it does not exist in your organisation.",
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _resolve(info, id)

    @strawberry.field(permission_classes=[CanRead], description="Several objects by global id.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise ClientError(f"At most {MAX_NODES} ids per call.")
        return list(await asyncio.gather(*(_resolve(info, i) for i in ids)))
