"""The README's first command as written: a fresh venv, `pip install -e .` without
extras, then the `okr` console script runs `okr dev` and answers GraphQL.

About a minute with an empty pip cache, seconds more than `okr dev` alone with a
warm one (pip's own cache, shared with every other install on the machine)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_okr_dev import OkrDev, graphql, start, started

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600
__all__ = ["started"]  # the fixture, used below


@pytest.fixture
def fresh_venv() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="okr-readme-"))
    yield path / ".venv"
    shutil.rmtree(path, ignore_errors=True)


def test_the_readme_first_command(
    fresh_venv: Path, okr_env: dict[str, str], data_dir: Path, started: list[OkrDev]
) -> None:
    readme = (REPO / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/okr dev" in readme
    env = {k: v for k, v in okr_env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", str(fresh_venv)], check=True, env=env)
    install = subprocess.run(
        [str(fresh_venv / "bin/pip"), "install", "-q", "-e", "."],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert install.returncode == 0, install.stderr
    # without extras: none of the dev tools came along
    probe = subprocess.run(
        [str(fresh_venv / "bin/python"), "-c", "import pytest"], capture_output=True, env=env
    )
    assert probe.returncode != 0
    okr = [str(fresh_venv / "bin/okr")]
    run, token = start(started, data_dir, env, okr)
    assert graphql(run.port, token)["organization"]["slug"] == "demo"
    assert run.stop(signal.SIGINT) == 0
