"""graphql-core's executor, held to a budget and sharing the event loop.

Every execution is held to its budget (limits.py): at most
`MAX_RESPONSE_VALUES` completed values and `MAX_EXECUTION_MS` spent completing
them on the event loop, else the whole result is one RESPONSE_TOO_LARGE or
EXECUTION_TOO_LONG error. And it never holds the loop for long: once a request
has completed values for `SLICE_MS` since it last paused (summed over its
synchronous stretches, during which the loop runs nothing else), every object it
comes to waits for a new round, which opens after the loop has run whatever else
was ready. So one request takes at most about SLICE_MS of each loop iteration,
however many of its tasks are ready at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from time import perf_counter
from typing import Any

import graphql
import graphql.execution.executor as graphql_executor
from graphql import ExecutionResult, GraphQLError, GraphQLObjectType
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from okrgraph.schema.limits import (
    MAX_EXECUTION_MS,
    MAX_RESPONSE_VALUES,
    SLICE_MS,
    execution_too_long,
    response_too_large,
)

# The execution running in this task (tasks it starts inherit it): the request's
# dataloaders ask it whether to hold their batch (`hold_batch`).
running: contextvars.ContextVar[BudgetedExecutionContext | None] = contextvars.ContextVar(
    "running_execution", default=None
)

MAX_EXECUTION_SECONDS = MAX_EXECUTION_MS / 1000
SLICE_SECONDS = SLICE_MS / 1000


# What the patches below replace or override, as graphql-core 3.3 has it: the
# range pyproject.toml declares. A graphql-core without these fails at import,
# never silently (a patched name nothing calls any more, an override never called).
GRAPHQL_CORE_RANGE = ">=3.3.2,<3.4"
OVERRIDDEN = {
    "execute_fields": [
        "self", "parent_type", "source_value", "path", "grouped_field_set", "position_context"
    ],
    "build_response": ["self", "data"],
    "is_awaitable": ["value"],
}  # fmt: skip


def missing_graphql_core_internals() -> list[str]:
    """What this module relies on that the installed graphql-core lacks."""
    missing = []
    gather = getattr(graphql_executor, "gather_with_cancel", None)
    executor = getattr(graphql_executor, "Executor", None)
    callers = [
        name
        for name, member in vars(executor or object).items()
        if inspect.isfunction(member)
        and member.__globals__ is vars(graphql_executor)
        and "gather_with_cancel" in member.__code__.co_names
    ]
    if not inspect.iscoroutinefunction(gather) or not callers:
        missing.append("graphql.execution.executor.gather_with_cancel, called by Executor")
    for name, parameters in OVERRIDDEN.items():
        method = getattr(StrawberryGraphQLCoreExecutionContext, name, None)
        try:
            found = list(inspect.signature(method).parameters) if callable(method) else None
        except (TypeError, ValueError):
            found = None
        if found != parameters:
            missing.append(f"ExecutionContext.{name}({', '.join(parameters)})")
    return missing


def require_graphql_core() -> None:
    """Fail loudly, naming the version, when graphql-core lacks what is patched here."""
    missing = missing_graphql_core_internals()
    if missing:
        raise RuntimeError(
            f"okrgraph.schema.execution is written for graphql-core{GRAPHQL_CORE_RANGE}; "
            f"the installed graphql-core {graphql.__version__} lacks {'; '.join(missing)}. "
            f"Install graphql-core{GRAPHQL_CORE_RANGE} or port this module."
        )


require_graphql_core()


async def gather_settled(*awaitables: Any) -> list[Any]:
    """graphql-core 3.3 cancels a field's siblings when it fails (`gather_with_cancel`).
    A sibling cancelled in the middle of an SQL statement closes its asyncpg
    connection, and the operation's transaction then fails as a whole: a client
    error next to a reading field would come back as INTERNAL. Here the siblings
    finish (they are short reads), then the first error propagates as before."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


graphql_executor.gather_with_cancel = gather_settled  # type: ignore[attr-defined]


class BudgetedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._values = 0  # values completed so far
        self._spent = 0.0  # seconds spent completing them, stretch by stretch
        self._stretch = 0.0  # when the current synchronous stretch began
        self._nesting = 0  # execute_fields calls on the stack (0: a stretch begins)
        self._used = 0.0  # seconds of the loop used since the last pause
        self._round: asyncio.Future[None] | None = None  # paused work waits for it
        self._paused = 0  # paused objects not resumed yet
        self._ticks = 0  # execute_fields calls so far
        self._seen = 0  # ... when `_release` last looked
        self._held: list[Callable[[], None]] = []  # batch dispatches held until they are
        running.set(self)
        self.refusal: GraphQLError | None = None  # the budget ran out

    def _count(self, values: int) -> None:
        if self.refusal is not None:
            raise self.refusal
        self._values += values
        if self._values > MAX_RESPONSE_VALUES:
            self.refusal = response_too_large()
            raise self.refusal

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if self.refusal is not None:
            return ExecutionResult(None, [self.refusal])  # one error, not one per field
        return response

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """Every object's fields pass here: count them, time the stretch, and
        pause it once it has run SLICE_MS."""
        now = perf_counter()
        self._ticks += 1
        if self._nesting == 0:
            self._stretch = now
        if self._round is not None or self._used + (now - self._stretch) > SLICE_SECONDS:
            paused = self._pause()
            if paused is not None:
                self._paused += 1
                return self._after(paused, parent_type, source_value, path, grouped_field_set,
                                   position_context)  # fmt: skip
        self._count(len(grouped_field_set))
        self._nesting += 1
        try:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        finally:
            self._nesting -= 1
            if self._nesting == 0:
                spent = perf_counter() - self._stretch
                self._spent += spent
                self._used += spent
                if self._spent > MAX_EXECUTION_SECONDS and self.refusal is None:
                    self.refusal = execution_too_long()

    def _pause(self) -> asyncio.Future[None] | None:
        """The round to wait for: this request has had its slice of the loop's
        iteration. The next round opens once the loop has run what else is ready."""
        if self._round is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # executed without a loop (execute_sync): nothing to share
                return None
            self._round = loop.create_future()
            loop.call_soon(self._open_round)
        return self._round

    def _open_round(self) -> None:
        opened, self._round, self._used = self._round, None, 0.0
        if opened is not None and not opened.done():
            opened.set_result(None)

    def hold_batch(self, dispatch: Callable[[], None]) -> bool:
        """Holds a dataloader's batch dispatch while some of this request's work
        is paused, and after it until the request's completion has gone quiet
        (a loop iteration without any): the paused objects' loads then join the
        batch instead of starting another, so a level completed in slices still
        loads its next level in one statement. False: dispatch now."""
        if self._paused == 0 and not self._held:
            return False
        if not self._held:
            self._seen = -1
            asyncio.get_running_loop().call_soon(self._release)
        self._held.append(dispatch)
        return True

    def _release(self) -> None:
        loop = asyncio.get_running_loop()
        if self._paused or self._ticks != self._seen:
            self._seen = self._ticks
            loop.call_soon(self._release)  # completion still going on: look again
            return
        held, self._held = self._held, []
        for dispatch in held:
            loop.call_soon(dispatch)

    async def _after(self, paused: asyncio.Future[None], *args: Any) -> Any:
        try:
            await paused
            result = self.execute_fields(*args)
        finally:
            self._paused -= 1
        return await result if self.is_awaitable(result) else result
