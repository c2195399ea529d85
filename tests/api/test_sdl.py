from okrgraph.schema.export import SDL_PATH, sdl


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
        "recordKpiMeasurements(", "linkKpi(", "createApiToken(", "createWebhookEndpoint(",
        "expectedProgress", "explanation", "finalScore", "health", "latest",
    ]:  # fmt: skip
        assert name in text, name
