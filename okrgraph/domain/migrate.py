"""Run the Alembic migrations programmatically (`okr migrate`, `okr dev`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.db import async_url

ROOT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The folder with alembic.ini and migrations/: the source checkout this
    package runs from, else the working directory (an installed package, as in
    the Docker image, whose WORKDIR holds them)."""
    for root in (ROOT, Path.cwd()):
        if (root / "alembic.ini").is_file() and (root / "migrations" / "env.py").is_file():
            return root
    raise RuntimeError(
        "migrations not found: run from the folder that holds alembic.ini and migrations/"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    root = project_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["configure_logger"] = False
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def migrate(database_url: str, revision: str = "head", *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database at `database_url`, as its owner."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as conn:

            def run(sync_conn: Connection) -> None:
                cfg = alembic_config(sync_conn)
                if down:
                    command.downgrade(cfg, revision)
                else:
                    command.upgrade(cfg, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()
