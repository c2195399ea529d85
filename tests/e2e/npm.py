"""npm packages for the e2e checks of real JavaScript clients (relay-compiler,
Apollo Client): installed from the npm registry into a test's temporary
directory within the test run (npm's cache makes later runs quick); nothing is
committed. Without npm the checks skip, except in CI, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NPM = shutil.which("npm")
NODE = shutil.which("node")


def skip_without_npm() -> None:
    """Skip the calling test module when npm is missing, unless in CI."""
    if (NPM is None or NODE is None) and not os.environ.get("CI"):
        pytest.skip("no npm here", allow_module_level=True)


def npm_install(directory: Path, *packages: str) -> None:
    """A private package in `directory` with `packages` (pinned specs) installed."""
    assert NPM is not None, "CI needs npm (Node.js) for this check"
    assert NODE is not None, "CI needs Node.js for this check"
    package_json = directory / "package.json"
    if not package_json.exists():
        package_json.write_text('{"name": "okrgraph-client-check", "private": true}')
    install = subprocess.run(
        [NPM, "install", "--no-audit", "--no-fund", "--silent", *packages],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
