"""Explanations, asOf, history and forecasts through GraphQL, on the demo data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from okrgraph.domain.seed import SeedResult
from tests.gql import data

QUERY = """query($asOf: DateTime!) {
  objectives(first: 10) { nodes {
    title progress progressDriver
    explanation { value rule terms { weight value source
      subject { __typename ... on KeyResult { title } ... on Objective { title } } } }
    keyResults(first: 5) { nodes {
      title score current start target
      before: score(asOf: $asOf)
      explanation { value rule terms { source value } }
      forecast { projectedValue projectedScore status points }
      history(first: 5) { nodes { value status } }
    } }
  } }
}"""


async def test_score_fields(client: httpx.AsyncClient, demo: SeedResult) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=3650)).isoformat()
    d = await data(client, demo.admin_token, QUERY, asOf=long_ago)
    objectives = {o["title"]: o for o in d["objectives"]["nodes"]}
    eng = objectives["Make every launch boringly reliable"]
    # KEY_RESULTS driver: the weighted mean of its two key results, each explained
    assert eng["explanation"]["value"] == pytest.approx(eng["progress"])
    terms = eng["explanation"]["terms"]
    assert {t["subject"]["title"] for t in terms} == {
        "Cut failed launches from 4 to 0",
        "Keep ground-station uptime at or above 99.9%",
    }
    assert {t["source"] for t in terms} == {"check-in"}
    krs = {kr["title"]: kr for kr in eng["keyResults"]["nodes"]}
    failures = krs["Cut failed launches from 4 to 0"]
    assert failures["current"] == 2
    assert failures["score"] == pytest.approx(0.5)  # (2 - 4) / (0 - 4)
    assert failures["before"] == 0.0  # nothing recorded ten years ago
    assert "DECREASE" in failures["explanation"]["rule"]
    # two check-ins (a week apart, closer early in a quarter), 3 then 2: the trend
    # projects below 2 at the cycle's end
    assert failures["forecast"]["points"] == 2
    assert failures["forecast"]["projectedValue"] < 2
    assert failures["history"]["nodes"][0]["value"] == pytest.approx(0.5)
    uptime = krs["Keep ground-station uptime at or above 99.9%"]
    assert uptime["score"] == 1.0
    # BOTH driver on the company objective: key results and children together
    company = objectives["Become the launch provider small satellites choose first"]
    sources = sorted(t["source"] for t in company["explanation"]["terms"])
    assert sources == ["check-in", "children", "children"]
    assert company["explanation"]["value"] == pytest.approx(company["progress"])
