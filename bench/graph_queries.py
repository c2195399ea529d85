"""The benchmark's two queries, each as a GraphQL document and as one
hand-written SQL statement building the same JSON (json_agg/json_build_object).

Orders and page sizes mirror the API's resolvers: teams by name, objectives and
key results by creation, check-ins newest effective first, KPI links by
creation; `first` becomes a LIMIT per parent. Row-level security scopes the SQL
to the transaction's organisation as it scopes the API's reads.
"""

from __future__ import annotations

DASHBOARD_GRAPHQL = """
query TeamDashboard($team: ID!, $objectives: Int!, $keyResults: Int!, $checkIns: Int!) {
  node(id: $team) {
    ... on Team {
      name
      objectives(first: $objectives) {
        nodes {
          title progress status
          keyResults(first: $keyResults) {
            nodes {
              title kind start target current score status confidence
              checkIns(first: $checkIns) { nodes { value confidence effectiveAt } }
              kpi { name health latest { value measuredAt } }
            }
          }
          kpis { name health latest { value measuredAt } }
        }
      }
    }
  }
}
"""

TREE_GRAPHQL = """
query CompanyTree($teams: Int!, $objectives: Int!, $keyResults: Int!, $checkIns: Int!) {
  organization {
    name
    teams(all: true, first: $teams) {
      nodes {
        name
        objectives(first: $objectives) {
          nodes {
            title progress status
            keyResults(first: $keyResults) {
              nodes {
                title score
                checkIns(first: $checkIns) { nodes { value effectiveAt } }
              }
            }
          }
        }
      }
    }
  }
}
"""

# A KPI with its latest measurement, for `m` a kpis row.
_KPI = """json_build_object(
    'name', m.name, 'health', m.health,
    'latest', (SELECT json_build_object('value', x.value, 'measuredAt', x.measured_at)
               FROM kpi_measurements x WHERE x.kpi_id = m.id
               ORDER BY x.measured_at DESC, x.id DESC LIMIT 1))"""

DASHBOARD_SQL = f"""
SELECT json_build_object('node', json_build_object(
  'name', t.name,
  'objectives', json_build_object('nodes', COALESCE((
    SELECT json_agg(json_build_object(
      'title', o.title, 'progress', o.progress, 'status', o.status,
      'keyResults', json_build_object('nodes', COALESCE((
        SELECT json_agg(json_build_object(
          'title', k.title, 'kind', k.kind, 'start', k.start_value, 'target', k.target_value,
          'current', k.current_value, 'score', k.score, 'status', k.status,
          'confidence', k.confidence,
          'checkIns', json_build_object('nodes', COALESCE((
            SELECT json_agg(json_build_object(
              'value', c.value, 'confidence', c.confidence, 'effectiveAt', c.effective_at
            ) ORDER BY c.effective_at DESC, c.id DESC)
            FROM (SELECT id, value, confidence, effective_at FROM check_ins
                  WHERE key_result_id = k.id
                  ORDER BY effective_at DESC, id DESC LIMIT :check_ins) c
          ), '[]'::json)),
          'kpi', (SELECT {_KPI}
                  FROM kpi_links l JOIN kpis m ON m.org_id = l.org_id AND m.id = l.kpi_id
                  WHERE l.key_result_id = k.id ORDER BY l.created_at, l.id LIMIT 1)
        ) ORDER BY k.created_at, k.id)
        FROM (SELECT * FROM key_results WHERE objective_id = o.id
              ORDER BY created_at, id LIMIT :key_results) k
      ), '[]'::json)),
      'kpis', COALESCE((
        SELECT json_agg({_KPI} ORDER BY l.created_at, l.id)
        FROM kpi_links l JOIN kpis m ON m.org_id = l.org_id AND m.id = l.kpi_id
        WHERE l.objective_id = o.id
      ), '[]'::json)
    ) ORDER BY o.created_at, o.id)
    FROM (SELECT * FROM objectives WHERE owner_team_id = t.id
          ORDER BY created_at, id LIMIT :objectives) o
  ), '[]'::json))
))::text
FROM teams t WHERE t.id = :team
"""

TREE_SQL = """
SELECT json_build_object('organization', json_build_object(
  'name', org.name,
  'teams', json_build_object('nodes', COALESCE((
    SELECT json_agg(json_build_object(
      'name', t.name,
      'objectives', json_build_object('nodes', COALESCE((
        SELECT json_agg(json_build_object(
          'title', o.title, 'progress', o.progress, 'status', o.status,
          'keyResults', json_build_object('nodes', COALESCE((
            SELECT json_agg(json_build_object(
              'title', k.title, 'score', k.score,
              'checkIns', json_build_object('nodes', COALESCE((
                SELECT json_agg(json_build_object('value', c.value, 'effectiveAt', c.effective_at)
                                ORDER BY c.effective_at DESC, c.id DESC)
                FROM (SELECT id, value, effective_at FROM check_ins
                      WHERE key_result_id = k.id
                      ORDER BY effective_at DESC, id DESC LIMIT :check_ins) c
              ), '[]'::json))
            ) ORDER BY k.created_at, k.id)
            FROM (SELECT id, title, score, created_at FROM key_results
                  WHERE objective_id = o.id
                  ORDER BY created_at, id LIMIT :key_results) k
          ), '[]'::json))
        ) ORDER BY o.created_at, o.id)
        FROM (SELECT id, title, progress, status, created_at FROM objectives
              WHERE owner_team_id = t.id
              ORDER BY created_at, id LIMIT :objectives) o
      ), '[]'::json))
    ) ORDER BY t.name, t.id)
    FROM (SELECT id, name FROM teams ORDER BY name, id LIMIT :teams) t
  ), '[]'::json))
))::text
FROM organizations org WHERE org.id = okr_current_org()
"""
