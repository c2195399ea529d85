"""Automatic persisted queries (Apollo's APQ protocol), over HTTP and graphql-transport-ws.

A client sends `extensions: {"persistedQuery": {"version": 1, "sha256Hash": h}}`:

- without `query`: the document registered under `h` runs; none registered is the
  request error `PersistedQueryNotFound` (`extensions.code`
  PERSISTED_QUERY_NOT_FOUND), and the client sends the hash again with the document;
- with `query`: `h` must be the SHA-256 (hex) of the document, else a 400
  (BAD_REQUEST); the document is then registered and runs as usual.

The store is an in-process least-recently-used map (`MAX_ENTRIES`, and at most
`MAX_STORED_BYTES` of documents): each `okr serve` worker has its own, and a
client whose hash another worker (or a restart) forgot just registers it again,
as the protocol expects. Only documents within the limits' MAX_DOCUMENT_BYTES are
kept (a longer one is refused anyway).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

from okrgraph.schema.limits import MAX_DOCUMENT_BYTES

MAX_ENTRIES = 2_000
MAX_STORED_BYTES = 16_000_000
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class PersistedQueryError(Exception):
    """A persisted-query extension that cannot be honoured; `code` is the error's."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PersistedQueries:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_STORED_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0
        self.documents: OrderedDict[str, str] = OrderedDict()

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document to run: `query` itself, or the one registered under the
        extension's hash. Raises PersistedQueryError for what the protocol refuses."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryError("Only persistedQuery version 1 is supported.", "BAD_REQUEST")
        sha = persisted.get("sha256Hash")
        if not isinstance(sha, str) or not SHA256_HEX.fullmatch(sha):
            raise PersistedQueryError(
                "persistedQuery.sha256Hash must be 64 hexadecimal digits.", "BAD_REQUEST"
            )
        sha = sha.lower()
        if query is None:
            found = self.documents.get(sha)
            if found is None:
                raise PersistedQueryError(NOT_FOUND_MESSAGE, NOT_FOUND_CODE)
            self.documents.move_to_end(sha)
            return found
        if hashlib.sha256(query.encode()).hexdigest() != sha:
            raise PersistedQueryError(
                "persistedQuery.sha256Hash is not the SHA-256 of the query.", "BAD_REQUEST"
            )
        self.register(sha, query)
        return query

    def register(self, sha: str, query: str) -> None:
        if len(query.encode()) > MAX_DOCUMENT_BYTES:
            return
        if self.documents.pop(sha, None) is None:
            self.size += len(query)
        self.documents[sha] = query
        while len(self.documents) > self.max_entries or self.size > self.max_bytes:
            _, dropped = self.documents.popitem(last=False)
            self.size -= len(dropped)


persisted_queries = PersistedQueries()
