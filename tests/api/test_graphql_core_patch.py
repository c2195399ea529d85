"""schema/execution.py patches graphql-core internals: the range it is written for
is declared, and a graphql-core without what it replaces fails at import, loudly."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import graphql
import pytest
from packaging.requirements import Requirement

from okrgraph.schema import execution

ROOT = Path(__file__).resolve().parents[2]


def test_the_declared_range_is_the_one_the_patch_is_written_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(d) for d in project["dependencies"]]
    core = next(r for r in declared if r.name == "graphql-core")
    assert str(core.specifier) == str(Requirement(f"x{execution.GRAPHQL_CORE_RANGE}").specifier)
    assert graphql.__version__ in core.specifier
    assert execution.missing_graphql_core_internals() == []


def _import_after(change: str) -> subprocess.CompletedProcess[str]:
    """Import the module in a fresh interpreter whose graphql-core had `change` made."""
    return subprocess.run(
        [sys.executable, "-c", f"{change}\nimport okrgraph.schema.execution"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            "import graphql.execution.executor as e\ndel e.gather_with_cancel",
            "gather_with_cancel",
        ),
        (  # still there, but nothing in the executor calls it any more
            "import graphql.execution.executor as e\n"
            "for f in vars(e.Executor).values():\n"
            "    if hasattr(f, '__code__') and 'gather_with_cancel' in f.__code__.co_names:\n"
            "        f.__code__ = f.__code__.replace(co_names=tuple(\n"
            "            'asyncio' if n == 'gather_with_cancel' else n\n"
            "            for n in f.__code__.co_names))",
            "gather_with_cancel",
        ),
        (
            "from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as C\n"
            "C.execute_fields = lambda self, parent_type, source_value, path, fields: None",
            "execute_fields",
        ),
        (
            "from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as C\n"
            "C.build_response = lambda self, data, errors: None",
            "build_response",
        ),
    ],
    ids=["gather_with_cancel gone", "gather_with_cancel unused", "execute_fields", "response"],
)
def test_a_graphql_core_without_what_is_patched_fails_at_import(change: str, named: str) -> None:
    result = _import_after(change)
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: okrgraph.schema.execution is written for graphql-core")
    assert f"the installed graphql-core {graphql.__version__} lacks" in last
    assert named in last


def test_an_unchanged_graphql_core_imports() -> None:
    result = _import_after("")
    assert result.returncode == 0, result.stderr
