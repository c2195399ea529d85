"""The GraphQL schema, composed of one Queries/Mutations class per concept."""

from __future__ import annotations

import strawberry

from okrgraph.schema.auth.mutations import AuthMutations
from okrgraph.schema.auth.queries import AuthQueries
from okrgraph.schema.auth.types import ApiToken
from okrgraph.schema.compiled.extension import CompiledReads
from okrgraph.schema.config import schema_config
from okrgraph.schema.errors import OkrSchema
from okrgraph.schema.execution import BudgetedExecutionContext
from okrgraph.schema.extensions import TransactionExtension
from okrgraph.schema.kpis.measurement_mutations import KpiMeasurementMutations
from okrgraph.schema.kpis.mutations import KpiMutations
from okrgraph.schema.kpis.queries import KpiQueries
from okrgraph.schema.kpis.types import Kpi, KpiMeasurement
from okrgraph.schema.limits import limit_extensions
from okrgraph.schema.live.events import EventSubscriptions
from okrgraph.schema.live.subscriptions import ProgressSubscriptions
from okrgraph.schema.node_queries import NodeQueries
from okrgraph.schema.notifications.mutations import NotificationMutations
from okrgraph.schema.notifications.queries import NotificationQueries
from okrgraph.schema.notifications.types import Notification, NotificationPreference
from okrgraph.schema.okrs.closing import CycleClosingMutations
from okrgraph.schema.okrs.key_result_mutations import KeyResultMutations
from okrgraph.schema.okrs.key_result_types import CheckIn, Initiative, KeyResult, TargetRevision
from okrgraph.schema.okrs.mutations import OkrMutations
from okrgraph.schema.okrs.queries import OkrQueries
from okrgraph.schema.okrs.types import Alignment, Cycle, Objective, Reflection
from okrgraph.schema.organizations.mutations import OrganizationMutations
from okrgraph.schema.organizations.queries import OrganizationQueries
from okrgraph.schema.organizations.types import Membership, Organization, Person, Team
from okrgraph.schema.webhooks.mutations import WebhookMutations
from okrgraph.schema.webhooks.queries import WebhookQueries
from okrgraph.schema.webhooks.types import WebhookDelivery, WebhookEndpoint


@strawberry.type(description="Reads of the goal graph.")
class Query(
    OrganizationQueries,
    NodeQueries,
    OkrQueries,
    KpiQueries,
    AuthQueries,
    WebhookQueries,
    NotificationQueries,
):
    pass


@strawberry.type(description="Changes to the goal graph.")
class Mutation(
    OrganizationMutations,
    OkrMutations,
    CycleClosingMutations,
    KeyResultMutations,
    KpiMutations,
    AuthMutations,
    WebhookMutations,
    NotificationMutations,
    KpiMeasurementMutations,
):
    pass


@strawberry.type(description="Live updates (graphql-transport-ws).")
class Subscription(ProgressSubscriptions, EventSubscriptions):
    pass


# Every Node type, so that `node(id:)` can return any of them.
NODE_TYPES = [
    Alignment, CheckIn, Cycle, Initiative, KeyResult, Kpi, KpiMeasurement, Membership,
    Objective, Organization, Person, Reflection, TargetRevision, Team,
    ApiToken, Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint,
]  # fmt: skip

schema = OkrSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=NODE_TYPES,
    extensions=[TransactionExtension, *limit_extensions(), CompiledReads],
    config=schema_config(),
    execution_context_class=BudgetedExecutionContext,
)
