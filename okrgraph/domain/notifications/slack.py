"""Slack notifications: the organisation's Slack-style incoming webhook and what is
posted to it.

An admin sets the webhook URL (`setSlackWebhook`); it is checked like a webhook
endpoint's (http(s), and a public address unless the organisation allows private
URLs) and stored sealed under the operator's key (`secrets.py`, bound to the
organisation), since whoever holds it may post to the channel. The API never
shows it, only whether one is set. The sender opens it (`webhook_url`) and POSTs
`payload(...)` through the send-time address guard (`transport.post_checked`).

The payload is what Slack's incoming webhooks take (Mattermost and others accept
it too): `text`, the fallback shown in notifications, and `blocks`, a section with
the title in bold and the text, and a context line naming the person it is for
(sends are per person, as their preferences choose).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models import Organization
from okrgraph.domain.models.enums import NotificationKind, SubjectType
from okrgraph.domain.organizations.queries import current_organization
from okrgraph.domain.webhooks.catalog import well_formed_url
from okrgraph.domain.webhooks.secrets import Keyring, keyring
from okrgraph.domain.webhooks.url_policy import require_allowed_url

SECTION_CHARS = 3000  # Slack's limit for a section's text


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(kind: NotificationKind, title: str, text: str, person_name: str) -> dict[str, Any]:
    """The JSON body of one Slack notification."""
    section = f"*{mrkdwn_escape(title)}*\n{mrkdwn_escape(text)}"
    if len(section) > SECTION_CHARS:
        section = section[: SECTION_CHARS - 1] + "…"
    return {
        "text": f"{title}: {text}" if text else title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"For {mrkdwn_escape(person_name)} · okrgraph · {kind.value}",
                    }
                ],
            },
        ],
    }


def webhook_url(organization: Organization, ring: Keyring | None = None) -> str | None:
    """The organisation's Slack webhook URL (None: not set); `SecretUnreadable` when no
    configured key opens it (set it again)."""
    if organization.slack_webhook_sealed is None:
        return None
    return (ring or keyring()).open(
        organization.slack_webhook_sealed, organization.id, organization.id
    )


async def set_slack_webhook(
    session: AsyncSession, principal: Principal, url: str | None
) -> Organization:
    """Set (or with None clear) where Slack notifications are posted (admins). The
    audit entry names the host only: the URL's path is the credential."""
    require_admin(principal)
    organization = await current_organization(session)
    if url is None:
        if organization.slack_webhook_sealed is None:
            return organization
        organization.slack_webhook_sealed = None
        changes: dict[str, Any] = {"slack_webhook": None}
    else:
        url = well_formed_url(url)
        await require_allowed_url(session, url)
        organization.slack_webhook_sealed = keyring().seal(url, organization.id, organization.id)
        changes = {"slack_webhook_host": urlsplit(url).hostname}
    await session.flush()
    record_audit(
        session,
        principal,
        "organization.slack_webhook_set" if url else "organization.slack_webhook_cleared",
        SubjectType.ORGANIZATION,
        organization.id,
        changes,
    )
    return organization
