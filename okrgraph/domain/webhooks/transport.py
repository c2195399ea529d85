"""POSTing to a URL an organisation gave us (webhook endpoints, its Slack webhook),
guarded against server-side request forgery at send time.

`post_checked` resolves the URL's host, refuses it unless every address is allowed
(`addresses.resolve_allowed`: public ones, or any when the organisation allows
private URLs) and connects to the address it checked itself (the URL's host
replaced, `Host` and TLS SNI kept), so the name is not resolved again between the
check and the connection (DNS rebinding). Redirects are never followed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from okrgraph.domain.webhooks.addresses import resolve_allowed

EXCERPT_CHARS = 2000


async def post_checked(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout_s: float,
) -> tuple[int, str]:
    """The response's status and the start of its body (`EXCERPT_CHARS`). Raises
    `AddressRefused`, or an `httpx.HTTPError` once every checked address failed."""
    target = httpx.URL(url)
    addresses = await resolve_allowed(
        target.host, target.port or _default_port(target), allow_private
    )
    headers = {**headers, "host": urlsplit(url).netloc}
    error: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request(
            "POST",
            target.copy_with(host=str(address)),
            content=body,
            headers=headers,
            timeout=timeout_s,
            extensions={"sni_hostname": target.host},
        )
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            error = exc  # the next address, as a resolver-ordered connect would
            continue
        try:
            return response.status_code, await _excerpt(response)
        finally:
            await response.aclose()
    assert error is not None
    raise error


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


async def _excerpt(response: httpx.Response) -> str:
    """The first `EXCERPT_CHARS` characters of the body, reading no more than needed."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= EXCERPT_CHARS * 4:  # UTF-8: at most 4 bytes a character
            break
    text = data.decode(response.encoding or "utf-8", errors="replace")
    return text[:EXCERPT_CHARS].replace("\x00", "")


def describe_error(exc: httpx.HTTPError) -> str:
    """`<kind>: <detail>` for a failed request (httpx's message can be empty)."""
    detail = str(exc) or repr(exc.__cause__ or exc.__context__ or "")
    return f"{type(exc).__name__}: {detail}"
