"""Running typed commands over one Bitrix24Client: one call, one batch, batches of any size, and
lists across pages. Call counts are the client's: a command is one method call, a batch of up to
50 commands one HTTP request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from integrations.bitrix24.api.command import Command, ListCommand
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Installation
from integrations.bitrix24.results import BATCH_LIMIT, BatchResult
from integrations.common.errors import ExternalAPIError

T = TypeVar("T")
R = TypeVar("R")


class BatchOutcome:
    """The parsed answers of a batch, by key or by command. A command that failed has its
    classified error in `errors`; one that did not run (halt) has neither an answer nor an error."""

    def __init__(self, commands: Mapping[str, Command[Any]], raw: BatchResult) -> None:
        self._commands = dict(commands)
        self._keys = {id(command): key for key, command in commands.items()}
        self._raw = raw
        self.errors: dict[str, ExternalAPIError] = dict(raw.errors)

    def ran(self, key: str) -> bool:
        """True when the command answered without an error."""
        return key in self._raw.results and key not in self.errors

    def error(self, key: str) -> ExternalAPIError | None:
        return self.errors.get(key)

    def value(self, key: str) -> Any:
        """The parsed answer of the command under `key`, raising its error if it failed (KeyError
        if it did not run)."""
        return self._commands[key].parse(self._raw.value(key))

    def get(self, command: Command[T]) -> T:
        """The parsed answer of `command` (one of this batch's), typed."""
        return command.parse(self._raw.value(self._keys[id(command)]))

    def total(self, key: str) -> int | None:
        return self._raw.totals.get(key)

    def next_start(self, key: str) -> int | None:
        """The `start` of a list command's next page, None when the answer was its last."""
        return self._raw.nexts.get(key)

    def has_more(self, key: str) -> bool:
        """True when a list command's answer is only its first page."""
        return key in self._raw.nexts

    def raw_results(self) -> dict[str, Any]:
        """The unparsed answers by key, for readers that take several commands' answers at once
        (invoices.SmartInvoices.detail)."""
        return dict(self._raw.results)

    def keys(self) -> list[str]:
        return list(self._commands)


class Bitrix24ApiBase:
    def __init__(self, client: Bitrix24Client) -> None:
        self.client = client

    @property
    def portal(self) -> Bitrix24Installation:
        return self.client.portal

    def run(self, command: Command[T]) -> T:
        """One REST call."""
        return command.parse(self.client.result(command.method, command.params))

    def run_counted(self, command: Command[T]) -> tuple[T, int | None]:
        """One REST call, with the `total` Bitrix24 reports for a list method."""
        response = self.client.call(command.method, command.params)
        return command.parse(response.result), response.total

    def batch(self, commands: Mapping[str, Command[Any]], *, halt: bool = False) -> BatchOutcome:
        """Up to 50 commands in one HTTP request (later ones may refer to earlier answers through
        command.ref)."""
        raw = self.client.batch({key: c.wire() for key, c in commands.items()}, halt=halt)
        return BatchOutcome(commands, raw)

    def batch_all(self, commands: Mapping[str, Command[Any]], *, halt: bool = False) -> BatchOutcome:
        """Any number of commands, in consecutive batches of 50."""
        raw = self.client.batch_all({key: c.wire() for key, c in commands.items()}, halt=halt)
        return BatchOutcome(commands, raw)

    def list_all(self, command: ListCommand[R], *, fast: bool = False) -> Iterator[R]:
        """Every row of a list command across pages, in as few requests as the client can (see
        Bitrix24Client.list_all; fast=True pages by `>id` for large sets)."""
        rows = self.client.list_all(
            command.method,
            command.params,
            key=command.list_key,
            fast=fast,
            id_field=command.id_field if fast else None,
        )
        for row in rows:
            yield command.parse_row(row)


__all__ = ["BATCH_LIMIT", "BatchOutcome", "Bitrix24ApiBase"]
