"""GraphiQL works with no internet (issue 7): a real headless Chromium opens the page
a new user opens first, GraphiQL renders, and `{ __typename }` runs, while every
request that would leave 127.0.0.1 is recorded and refused.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run), driven by
Playwright for Python; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import Request, Route, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.api.app import create_app
from okrgraph.api.graphiql import ASSETS
from okrgraph.domain.config import Settings
from tests.ws import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1"}

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("no Chromium here (apt-get install chromium)", allow_module_level=True)


async def test_graphiql_renders_and_runs_a_query_with_no_internet(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    app = create_app(Settings(), sessionmaker=sessionmaker, queue=None)
    outside: list[str] = []
    local: list[str] = []

    async def only_local(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            local.append(request.url)
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort("internetdisconnected")

    async with serving(app) as ws_url, async_playwright() as pw:
        base = ws_url.replace("ws://", "http://")
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            context = await browser.new_context()
            await context.route("**/*", only_local)
            page = await context.new_page()
            page.on("websocket", lambda ws: local.append(ws.url))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # `q`: the page's own parameter for the editor's query (`query` would run it)
            await page.goto(f"{base}?q={quote('{ __typename }')}", wait_until="load")
            run = page.locator(".graphiql-execute-button")
            await run.wait_for(state="visible", timeout=20_000)
            assert "Loading" not in await page.locator("#graphiql").inner_text()
            await page.locator(".graphiql-query-editor .CodeMirror").first.wait_for()
            await page.evaluate(
                "document.querySelector('.graphiql-query-editor .CodeMirror')"
                ".CodeMirror.setValue('{ __typename }')"
            )
            await run.click()
            await page.wait_for_function(
                "document.querySelector('.result-window')?.innerText.includes('\"Query\"')",
                timeout=20_000,
            )
            result = await page.locator(".result-window").inner_text()
            assert '"__typename": "Query"' in result
            assert errors == []
        finally:
            await browser.close()
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    for asset in ASSETS:  # the page's scripts and styles all came from this server
        assert any(url.endswith(f"/static/graphiql/{asset}") for url in local), asset
