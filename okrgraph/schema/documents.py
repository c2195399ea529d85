"""Parsed and validated documents kept between requests.

A client sends the same few documents over and over; parsing one and running
graphql-core's validation rules over it cost more than the rest of a small
request's Python (bench/fixed_cost.py). Both depend only on the document's text
and the schema, which is fixed for the life of the process, so:

- the parsed document (graphql-core never changes one) is kept by its text;
- a document that passed validation is remembered as valid, and later requests
  run only the rules that depend on the request's variables (`PER_REQUEST`: the
  limits' depth, aliases and cost, limits.py). A document that failed is
  validated again each time, so every refusal is the same as without the cache;
- the variables (their JSON, up to `MAX_VARIABLES_CHARS`) with which a valid
  document passed those rules too, at most `MAX_PASSES` per document: a client
  repeating a request skips them (~0.5 ms for a small query with variables).

Both are least-recently-used caches bounded by entries and by the total size of
the documents and remembered variables (`MAX_ENTRIES`, `MAX_CACHED_BYTES`), so
unique documents cannot grow memory without limit. Strawberry's ParserCache and
ValidationCache are not used: the validation cache keys on the rule classes, and
the limits rule is a new class per request (it closes over the variables), so it
would never hit.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_ENTRIES = 512
MAX_CACHED_BYTES = 8_000_000
PER_REQUEST = "per_request"  # a validation rule class with this attribute set depends on variables
MAX_PASSES = 16
MAX_VARIABLES_CHARS = 1_000


@dataclass
class Entry:
    document: DocumentNode
    valid: bool
    # The variables (JSON) with which the per-request rules found nothing, newest last.
    passes: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def chars(self) -> int:
        return sum(map(len, self.passes))


def variables_key(variables: dict[str, Any] | None) -> str | None:
    """The variables as one canonical text, or None when too long to remember."""
    try:
        key = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return key if len(key) <= MAX_VARIABLES_CHARS else None


class DocumentStore:
    """Bounded LRU of the parsed documents, whether each passed validation, and the
    variables with which it passed the per-request rules."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # characters of the cached documents' texts
        self.entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, query: str) -> Entry | None:
        entry = self.entries.get(query)
        if entry is not None:
            self.entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode, valid: bool) -> None:
        if len(query) > self.max_bytes:
            return
        old = self.entries.pop(query, None)
        self.size += len(query) if old is None else -old.chars
        self.entries[query] = Entry(document, valid)
        self._bound()

    def passed(self, query: str, variables: str) -> None:
        """The valid document `query` passed the per-request rules with `variables`."""
        entry = self.entries.get(query)
        if entry is None or not entry.valid or variables in entry.passes:
            return
        entry.passes[variables] = None
        self.size += len(variables)
        if len(entry.passes) > MAX_PASSES:
            self.size -= len(entry.passes.popitem(last=False)[0])
        self._bound()

    def _bound(self) -> None:
        while len(self.entries) > self.max_entries or self.size > self.max_bytes:
            dropped, entry = self.entries.popitem(last=False)
            self.size -= len(dropped) + entry.chars

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0


store = DocumentStore()


class DocumentCache(SchemaExtension):
    """Parse from the cache, and validate a known-valid document with only the
    per-request rules. Runs inside RequestLimits (which adds the limits rule and
    gives the errors their codes) and after MaxTokensLimiter's parse options."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        query = ec.query
        entry = store.get(query) if query is not None and ec.graphql_document is None else None
        if entry is not None:
            ec.graphql_document = entry.document
        yield
        if entry is None and query is not None and ec.graphql_document is not None:
            if not ec.pre_execution_errors:
                store.put(query, ec.graphql_document, valid=False)

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        query, document = ec.query, ec.graphql_document
        if query is None or document is None or ec.pre_execution_errors is not None:
            yield
            return
        entry = store.get(query)
        per_request = [rule for rule in ec.validation_rules if getattr(rule, PER_REQUEST, False)]
        if entry is not None and entry.document is document and entry.valid:
            key = variables_key(ec.variables) if per_request else None
            if key is not None and key in entry.passes:
                entry.passes.move_to_end(key)
                errors = []
            else:
                errors = validate(ec.schema._schema, document, per_request) if per_request else []
                if key is not None and not errors:
                    store.passed(query, key)
        else:
            errors = validate_document(ec.schema._schema, document, ec.validation_rules)
            if not errors:
                store.put(query, document, valid=True)
                if per_request and (key := variables_key(ec.variables)) is not None:
                    store.passed(query, key)  # the per-request rules ran too
        ec.pre_execution_errors = errors
        yield
