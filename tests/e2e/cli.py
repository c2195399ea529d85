"""Run the `okr` command as a real process."""

from __future__ import annotations

import asyncio
import sys


async def okr(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`okr <args>` with `env`; its exit code and its output (stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "okrgraph",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()
