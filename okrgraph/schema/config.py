"""Schema configuration."""

from __future__ import annotations

from typing import Any

from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter


class CachedNameConverter(NameConverter):
    """Strawberry works out an argument's GraphQL name on every field call; with
    thousands of paginated fields per request that was a tenth of the time.
    Arguments live as long as the schema, so their names are cached by identity."""

    def __init__(self) -> None:
        super().__init__()
        self._argument_names: dict[int, str] = {}

    def from_argument(self, argument: Any) -> str:
        key = id(argument)
        name = self._argument_names.get(key)
        if name is None:
            name = self._argument_names[key] = super().from_argument(argument)
        return name


def schema_config() -> StrawberryConfig:
    return StrawberryConfig(name_converter=CachedNameConverter())
