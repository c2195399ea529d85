"""Operators against a running `okr dev`, from the outside: a second organisation
made with `okr org create --data-dir` (reaching okr dev's embedded PostgreSQL,
no second server), tokens listed, created and revoked the same way, and over
HTTP each organisation's token sees only its own organisation: every id of the
demo graph is null to the other's `node`/`nodes`, and its lists hold only its
own rows. With okr dev stopped, an operator command starts the database for
itself and stops it after."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.test_okr_dev import OkrDev, alive, start, started

__all__ = ["started"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

OKR = [sys.executable, "-m", "okrgraph"]
IDS = """{
  organization { id slug
    teams(all: true, first: 100) { edges { node { id } } }
    people(first: 100) { edges { node { id } } } }
  viewer { person { email } }
  objectives(first: 100) { edges { node { id keyResults(first: 50) { edges { node { id } } } } } }
  cycles(first: 50) { edges { node { id } } }
  kpis(first: 50) { edges { node { id } } }
}"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


def operator(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*OKR, *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def post(port: int, token: str, query: str, **variables: Any) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def data(port: int, token: str, query: str, **variables: Any) -> Any:
    response = post(port, token, query, **variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def ids_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "id"] + [
            i for k, v in value.items() if k != "id" for i in ids_in(v)
        ]
    if isinstance(value, list):
        return [i for v in value for i in ids_in(v)]
    return []


def postgres_servers_on(pgdata: Path) -> list[psutil.Process]:
    """Postmasters (postgres processes whose parent is not a postgres) on `pgdata`."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] != "postgres" or str(pgdata) not in (proc.info["cmdline"] or []):
                continue
            parent = proc.parent()
            if parent is None or parent.name() != "postgres":
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_second_organisation_made_from_outside_sees_only_itself(
    started: list[OkrDev], okr_env: dict[str, str], data_dir: Path
) -> None:
    run, demo_token = start(started, data_dir, okr_env)
    pgdata = (data_dir / "pg").resolve()
    servers = postgres_servers_on(pgdata)
    assert len(servers) == 1

    created = operator(
        data_dir,
        okr_env,
        *("org", "create", "--slug", "beta", "--name", "Beta Labs"),
        *("--admin-email", "Bea@Beta.example"),
    )
    beta_token = created.stdout.strip()
    assert beta_token.startswith("okr_")
    assert "created organisation beta" in created.stderr
    assert "started its database" not in created.stderr + created.stdout
    assert postgres_servers_on(pgdata) == servers  # okr dev's server, no second one

    listed = operator(data_dir, okr_env, "org", "list").stdout
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["beta", "demo"]

    # Each token sees its own organisation.
    demo = data(run.port, demo_token, IDS)
    beta = data(run.port, beta_token, IDS)
    assert demo["organization"]["slug"] == "demo"
    assert beta["organization"]["slug"] == "beta"
    assert beta["viewer"] == {"person": {"email": "bea@beta.example"}}
    assert beta["objectives"]["edges"] == []
    assert beta["cycles"]["edges"] == []
    assert beta["kpis"]["edges"] == []
    assert len(beta["organization"]["people"]["edges"]) == 1
    assert beta["organization"]["teams"]["edges"] == []

    # Every id of the demo graph is nothing to beta's token (and something to demo's).
    demo_ids = ids_in(demo)
    assert len(demo_ids) > 20
    assert set(demo_ids).isdisjoint(ids_in(beta))
    for node_id in demo_ids:
        assert data(run.port, beta_token, NODE, id=node_id) == {"node": None}, node_id
    assert data(run.port, beta_token, NODES, ids=demo_ids) == {"nodes": [None] * len(demo_ids)}
    assert data(run.port, demo_token, NODE, id=demo_ids[0])["node"] == {"id": demo_ids[0]}
    beta_ids = ids_in(beta)
    assert data(run.port, demo_token, NODES, ids=beta_ids) == {"nodes": [None] * len(beta_ids)}

    # Tokens of beta, from outside: create, list, revoke (dead at once over HTTP).
    second = operator(
        data_dir,
        okr_env,
        *("token", "create", "--org", "beta", "--name", "dashboard"),
        *("--person", "bea@beta.example", "--scope", "read"),
    ).stdout.strip()
    assert data(run.port, second, "{ organization { slug } }") == {"organization": {"slug": "beta"}}
    tokens = operator(data_dir, okr_env, "token", "list", "--org", "beta").stdout.splitlines()
    assert len(tokens) == 3  # the header, the first admin's, the dashboard's
    row = next(line for line in tokens if "dashboard" in line).split()
    assert (row[1], row[2], row[3]) == (second[:10], "live", "read")
    revoked = operator(data_dir, okr_env, "token", "revoke", row[1], "--org", "beta").stdout
    assert revoked.startswith(f"revoked {second[:10]}")
    assert post(run.port, second, "{ organization { slug } }").status_code == 401
    assert data(run.port, beta_token, "{ organization { slug } }") == {
        "organization": {"slug": "beta"}
    }
    # Demo's token never sees beta's tokens, nor beta's its.
    assert "demo" not in operator(data_dir, okr_env, "token", "list", "--org", "beta").stdout

    # okr dev stopped: the command starts the database for itself, then stops it.
    assert run.stop(signal.SIGTERM) == 0
    assert [p for p in servers if alive(p)] == []
    offline = operator(data_dir, okr_env, "org", "list")
    assert "okr dev is not running" in offline.stderr  # stdout stays the listing
    assert [line.split()[0] for line in offline.stdout.splitlines()[1:]] == ["beta", "demo"]
    assert postgres_servers_on(pgdata) == []
