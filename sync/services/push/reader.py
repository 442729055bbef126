"""Bitrix24 reads as rounds of `batch` calls, for the read stage and the invoice sources: typed
commands of the Bitrix24 facade (integrations.bitrix24.api), whose answers reach each command's
on_result already parsed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from integrations.bitrix24.api import PAGE_SIZE
from integrations.bitrix24.api.command import Command
from integrations.common.errors import AuthorizationLostError, ExternalAPIError
from sync.services.push.context import PassContext

logger = logging.getLogger(__name__)

B24_PAGE = PAGE_SIZE


class Reader:
    """List commands run as rounds of `batch` calls; a list with more pages than the first goes on
    in the next round, together with whatever else that round needs. A command added with
    follow=False is not continued here: its on_result gets the answer's `total` too and asks for
    further pages itself.

    A round whose batch call fails as a whole (transport error, 5xx, the throttle giving up) hands
    that error to the on_error of every command of the round: the invoices they concern fail or
    retry, the rest of the pass goes on."""

    def __init__(self, ctx: PassContext) -> None:
        self.ctx = ctx
        self.queue: dict[str, tuple[Command[Any], Callable, Callable, bool]] = {}

    def add(
        self, key: str, command: Command[Any], on_result: Callable, on_error: Callable, *, follow: bool = True
    ) -> None:
        self.queue[key] = (command, on_result, on_error, follow)

    def room(self) -> int:
        """Commands the calls of the round queued now can still carry."""
        return -len(self.queue) % 50

    def run_round(self) -> None:
        """Run what is queued now (in order); further pages are queued for the next round."""
        current, self.queue = self.queue, {}
        if not current:
            return
        try:
            outcome = self.ctx.batch_all({key: entry[0] for key, entry in current.items()})
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            logger.warning("Bitrix24 batch of %s commands failed: %s", len(current), exc)
            for _command, _on_result, on_error, _follow in current.values():
                on_error(exc)
            return
        for key, (command, on_result, on_error, follow) in current.items():
            if key in outcome.errors:
                on_error(outcome.errors[key])
                continue
            if not outcome.ran(key):
                continue
            if not follow:
                on_result(outcome.value(key), outcome.total(key), outcome.next_start(key))
                continue
            on_result(outcome.value(key))
            following = outcome.next_start(key)
            if following:
                self.add(f"{key}+{following}", command.at(following), on_result, on_error)

    def run(self) -> None:
        while self.queue:
            self.run_round()
