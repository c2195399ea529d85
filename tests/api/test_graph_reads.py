"""Reads of the goal graph through the full HTTP app."""

from __future__ import annotations

import httpx

from okrgraph.domain.seed import SeedResult
from tests.gql import gql

TREE = """
{
  organization {
    teams(all: true, first: 10) {
      nodes {
        name
        parent { name }
        objectives(first: 5) {
          nodes {
            title level progress status expectedProgress
            ownerPerson { name }
            parents(first: 5) { nodes { weight parentObjective { title } } }
            keyResults(first: 5) {
              nodes {
                title kind start target current score
                checkIns(first: 2) { nodes { value confidence author { email } } }
                kpi { name }
              }
            }
            kpis { name health }
          }
        }
      }
    }
  }
  kpis(first: 10) { nodes { name health onTarget latest { value } } }
}
"""


async def test_company_tree(client: httpx.AsyncClient, demo: SeedResult) -> None:
    body = await gql(client, demo.admin_token, TREE)
    assert "errors" not in body, body
    teams = {t["name"]: t for t in body["data"]["organization"]["teams"]["nodes"]}
    assert set(teams) == {"Acme Rockets", "Engineering", "Growth", "Platform"}
    assert teams["Platform"]["parent"] == {"name": "Engineering"}
    eng = teams["Engineering"]["objectives"]["nodes"][0]
    assert eng["parents"]["nodes"][0]["weight"] == 2.0
    krs = {kr["title"]: kr for kr in eng["keyResults"]["nodes"]}
    failures = krs["Cut failed launches from 4 to 0"]
    assert [c["value"] for c in failures["checkIns"]["nodes"]] == [2.0, 3.0]
    assert eng["kpis"] == [{"name": "Open P1 incidents", "health": "WARNING"}]
    kpis = {k["name"]: k for k in body["data"]["kpis"]["nodes"]}
    assert set(kpis) == {"Daily active users", "Open P1 incidents", "Signed launch contracts"}
