"""End-to-end tests run `okr` as real processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings a developer's shell may carry that would point `okr` elsewhere.
_CONFIG_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "OKR_DATABASE_URL",
    "OKR_REDIS_URL",
    "OKR_HOST",
    "OKR_SMTP_HOST",
    "OKR_MAIL_FILE",
)


@pytest.fixture
def okr_env() -> dict[str, str]:
    """The environment for an `okr` child: no database or Redis configured."""
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS and k != "OKR_PORT"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh directory for `okr dev`'s data. Not under pytest's tmp_path: as root,
    PostgreSQL runs as another user and needs to traverse the parents, and a
    concurrent pytest resets its basetemp's mode to 0700."""
    path = Path(tempfile.mkdtemp(prefix="okr-e2e-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)
