"""The peers benchmark's reads, each as a pair of equivalent GraphQL documents: okrgraph's
schema and PostGraphile's (default inflection over the same tables: `teamByOrgIdAndId`,
`objectivesByOrgIdAndOwnerTeamId`, connections with `nodes`, `orderBy` enums).

Both sides ask for the same rows in the same orders and page sizes (okrgraph's resolvers:
objectives and key results by creation, check-ins newest effective first, KPI links by
creation, teams by name); where okrgraph has an object (a key result's `kpi`, a KPI's
`latest`) PostGraphile has a connection of at most one row. `entity_counts` counts the
rows of each kind in an answer, whatever the nesting, so the two answers can be checked
equal before timing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

SMALL_OKR = """
query Small($team: ID!, $objectives: Int!, $keyResults: Int!) {
  node(id: $team) {
    ... on Team {
      name
      objectives(first: $objectives) {
        nodes {
          title progress status
          keyResults(first: $keyResults) { nodes { title score status } }
        }
      }
    }
  }
}
"""

SMALL_PG = """
query Small($org: UUID!, $team: UUID!, $objectives: Int!, $keyResults: Int!) {
  teamByOrgIdAndId(orgId: $org, id: $team) {
    name
    objectivesByOrgIdAndOwnerTeamId(first: $objectives, orderBy: [CREATED_AT_ASC, ID_ASC]) {
      nodes {
        title progress status
        keyResultsByOrgIdAndObjectiveId(first: $keyResults, orderBy: [CREATED_AT_ASC, ID_ASC]) {
          nodes { title score status }
        }
      }
    }
  }
}
"""

_PG_KPI = """
kpiByOrgIdAndKpiId {
  name health
  kpiMeasurementsByOrgIdAndKpiId(first: 1, orderBy: [MEASURED_AT_DESC, ID_DESC]) {
    nodes { value measuredAt }
  }
}"""

DASHBOARD_PG = f"""
query TeamDashboard($org: UUID!, $team: UUID!, $objectives: Int!, $keyResults: Int!,
                    $checkIns: Int!) {{
  teamByOrgIdAndId(orgId: $org, id: $team) {{
    name
    objectivesByOrgIdAndOwnerTeamId(first: $objectives, orderBy: [CREATED_AT_ASC, ID_ASC]) {{
      nodes {{
        title progress status
        keyResultsByOrgIdAndObjectiveId(first: $keyResults, orderBy: [CREATED_AT_ASC, ID_ASC]) {{
          nodes {{
            title kind startValue targetValue currentValue score status confidence
            checkInsByOrgIdAndKeyResultId(
              first: $checkIns, orderBy: [EFFECTIVE_AT_DESC, ID_DESC]
            ) {{
              nodes {{ value confidence effectiveAt }}
            }}
            kpiLinksByOrgIdAndKeyResultId(first: 1, orderBy: [CREATED_AT_ASC, ID_ASC]) {{
              nodes {{ {_PG_KPI} }}
            }}
          }}
        }}
        kpiLinksByOrgIdAndObjectiveId(orderBy: [CREATED_AT_ASC, ID_ASC]) {{
          nodes {{ {_PG_KPI} }}
        }}
      }}
    }}
  }}
}}
"""

TREE_PG = """
query CompanyTree($org: UUID!, $teams: Int!, $objectives: Int!, $keyResults: Int!,
                  $checkIns: Int!) {
  organizationById(id: $org) {
    name
    teamsByOrgId(first: $teams, orderBy: [NAME_ASC, ID_ASC]) {
      nodes {
        name
        objectivesByOrgIdAndOwnerTeamId(first: $objectives, orderBy: [CREATED_AT_ASC, ID_ASC]) {
          nodes {
            title progress status
            keyResultsByOrgIdAndObjectiveId(first: $keyResults, orderBy: [CREATED_AT_ASC, ID_ASC]) {
              nodes {
                title score
                checkInsByOrgIdAndKeyResultId(
                  first: $checkIns, orderBy: [EFFECTIVE_AT_DESC, ID_DESC]
                ) {
                  nodes { value effectiveAt }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""

# A row's kind by a field only that kind has in these documents (same name in both schemas).
_KINDS = {
    "progress": "objectives",
    "score": "key_results",
    "effectiveAt": "check_ins",
    "health": "kpis",
    "measuredAt": "kpi_measurements",
}


def entity_counts(value: Any, counts: Counter[str] | None = None) -> Counter[str]:
    """Rows of each kind in a GraphQL answer's `data`, teams counted by `name` alone."""
    counts = Counter() if counts is None else counts
    if isinstance(value, list):
        for item in value:
            entity_counts(item, counts)
    elif isinstance(value, dict):
        kinds = [kind for field, kind in _KINDS.items() if field in value]
        if kinds:
            counts.update(kinds)
        elif "name" in value:
            counts["named"] += 1
        for item in value.values():
            entity_counts(item, counts)
    return counts
