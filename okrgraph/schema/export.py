"""Write the SDL to okrgraph/schema/schema.graphql: `python -m okrgraph.schema.export`.

The file is checked in; tests/api/test_sdl.py fails when it drifts from the code.
"""

from __future__ import annotations

from pathlib import Path

from okrgraph.schema import schema

SDL_PATH = Path(__file__).with_name("schema.graphql")


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"


def main() -> None:
    SDL_PATH.write_text(sdl())
    print(f"wrote {SDL_PATH}")  # noqa: T201


if __name__ == "__main__":
    main()
