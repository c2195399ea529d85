"""Names shared by whoever publishes live updates (the worker) and whoever
relays them to clients (the API's subscriptions)."""

from __future__ import annotations

import uuid


def progress_channel(org_id: uuid.UUID | str) -> str:
    """Redis pub/sub channel of an organisation's committed score changes."""
    return f"okr:org:{org_id}:progress"
