import re
from pathlib import Path

import graphql

from okrgraph.schema.export import SDL_PATH, sdl

README = Path(__file__).parents[2] / "README.md"


def test_checked_in_sdl_matches_the_code() -> None:
    assert SDL_PATH.read_text() == sdl(), (
        "schema.graphql is stale: run `python -m okrgraph.schema.export` and commit it"
    )


def test_contract_names_exist() -> None:
    text = sdl()
    for name in [
        "viewer:", "organization:", "node(id:", "objectives(", "kpis(", "cycles(",
        "type Organization", "type Team", "type Person", "type Cycle", "type Objective",
        "type KeyResult", "type CheckIn", "type Kpi ", "type KpiMeasurement", "type Alignment",
        "type Initiative", "type Notification", "type WebhookEndpoint", "createTeam(",
        "createPerson(", "createCycle(", "createObjective(", "updateObjective(",
        "alignObjective(", "createKeyResult(", "checkIn(", "createKpi(",
        "recordKpiMeasurements(", "linkKpi(", "closeCycle(", "dryRun:", "createApiToken(",
        "createWebhookEndpoint(", "progressChanged(", "expectedProgress", "explanation",
        "finalScore", "health", "latest",
    ]:  # fmt: skip
        assert name in text, name


def test_readme_operations_are_valid_against_the_schema() -> None:
    schema = graphql.build_schema(sdl())
    blocks = re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        assert graphql.validate(schema, graphql.parse(block)) == [], block
