"""The real relay-compiler accepts the checked-in schema (issue 7): a fragment with
`@connection` on every connection field of the schema (with `@refetchable`, as
`usePaginationFragment` needs, where the type allows it), and the
`progressChanged` subscription with its subject.

relay-compiler is installed from the npm registry into a temporary directory
within the test run (tests/e2e/npm.py); nothing is committed.
tests/api/test_connections_spec.py checks the same rules in pure Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import graphql

from okrgraph.schema.export import SDL_PATH
from tests.e2e.npm import npm_install, skip_without_npm

RELAY_COMPILER = "relay-compiler@21.0.1"

skip_without_npm()

SUBSCRIPTION = """
  subscription RelayCheckLiveSubscription($ids: [ID!]) {
    progressChanged(ids: $ids) {
      subject {
        ... on KeyResult { id score status }
        ... on Objective { id progress status }
      }
      previousValue
      previousStatus
    }
  }
"""


def connection_fragments(schema: graphql.GraphQLSchema) -> list[str]:
    """One pagination fragment per connection field of the schema."""
    fragments = []
    for type_name, type_ in sorted(schema.type_map.items()):
        if not isinstance(type_, graphql.GraphQLObjectType) or type_name.startswith("__"):
            continue
        if type_name in {"Mutation", "Subscription"}:
            continue
        refetchable = type_name == "Query" or any(i.name == "Node" for i in type_.interfaces)
        for field_name, field in sorted(type_.fields.items()):
            if not graphql.get_named_type(field.type).name.endswith("Connection"):
                continue
            name = f"RelayCheck{type_name}_{field_name}"
            directive = f'@refetchable(queryName: "{name}PaginationQuery")' if refetchable else ""
            fragments.append(f"""
  fragment {name} on {type_name} {directive}
  @argumentDefinitions(count: {{ type: "Int", defaultValue: 10 }}, cursor: {{ type: "String" }}) {{
    {field_name}(first: $count, after: $cursor) @connection(key: "{name}") {{
      edges {{ cursor node {{ __typename }} }}
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    }}
  }}""")
    return fragments


def test_relay_compiler_accepts_the_schema(tmp_path: Path) -> None:
    schema = graphql.build_schema(SDL_PATH.read_text())
    fragments = connection_fragments(schema)
    assert len(fragments) >= 25
    src = tmp_path / "src"
    src.mkdir()
    documents = [*fragments, SUBSCRIPTION]
    (src / "RelayCheck.js").write_text(
        'import { graphql } from "react-relay";\n'
        + "".join(f"export const d{i} = graphql`{d}\n`;\n" for i, d in enumerate(documents))
    )
    shutil.copy(SDL_PATH, tmp_path / "schema.graphql")
    config = {"src": "./src", "schema": "./schema.graphql", "language": "javascript"}
    (tmp_path / "relay.config.json").write_text(json.dumps(config))
    npm_install(tmp_path, RELAY_COMPILER)
    compiler = tmp_path / "node_modules" / ".bin" / "relay-compiler"
    run = subprocess.run([str(compiler)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    generated = {p.name for p in (src / "__generated__").iterdir()}
    assert "RelayCheckLiveSubscription.graphql.js" in generated
    assert "RelayCheckQuery_objectivesPaginationQuery.graphql.js" in generated
