"""The invoice source of Bitrix24's smart invoices (entity type 31; the commands are the facade's,
integrations.bitrix24.api.invoices).

Reads invoices and their product rows in two rounds of `batch` calls: round 1 the invoices and full
pages of product rows (200 invoices per list, ordered, as many pages as a guess of five rows an
invoice fills while round 1 has room); round 2 every row page the answers' totals show missing, at
its `start` offset, together with the clients the read stage adds (1 HTTP request for up to 400
invoices whose clients are known, 2 for 1,000 of three rows and 200 new companies).
"""

from __future__ import annotations

from collections.abc import Callable

from integrations.bitrix24.api.invoices import READ_SELECT, SmartInvoices, productrows_list
from integrations.common.errors import ExternalAPIError, RetryableError
from sync.mappers.invoice import invoice_to_xero, totals_gap
from sync.models import ContactLink
from sync.services.contacts import ClientKey
from sync.services.push.context import SMART_INVOICE, Work
from sync.services.push.reader import B24_PAGE, Reader

# Product rows are read as full pages of one ordered list over many invoices at once (owner id in
# [...], a fixed order so offsets are stable). 200 ids keep a command string short.
ROW_OWNERS_PER_COMMAND = 200
# What the first round guesses an invoice holds: it asks for the pages that many rows would fill,
# as far as round 1's batch calls have room. The `total` of each answer then tells exactly which
# pages are still missing; they all go into the next round at their `start` offsets.
ROWS_PER_INVOICE_GUESS = 5
KIND = SmartInvoices()


class SmartInvoiceSource:
    """The read/map seam for entity type 31. Another invoice kind (old crm.invoice.*, issue 15)
    provides a class with the same methods and registers it in sync.services.push.sources."""

    entity_type = SMART_INVOICE

    def __init__(self, reader: Reader, by_id: dict[int, Work]) -> None:
        self.reader = reader
        self.by_id = by_id
        self.seen: set[int] = set()
        self.chunks: list[_RowChunk] = []

    # --- reading (called by the read stage) ---

    def queue_first(self) -> None:
        """Round 1: the invoices, the first row page of every chunk, and as many further row pages as
        the guess calls for and round 1's batch calls have room for (taken in turns by the chunks)."""
        reader, ids = self.reader, sorted(self.by_id)
        for n in range(0, len(ids), B24_PAGE):
            chunk = ids[n : n + B24_PAGE]
            listed = KIND.list_command({"@id": chunk}, select=READ_SELECT)
            reader.add(f"i{n}", listed, self._take_invoices, self._invoices_failed(chunk))
        first = [
            self._new_chunk(ids[n : n + ROW_OWNERS_PER_COMMAND]) for n in range(0, len(ids), ROW_OWNERS_PER_COMMAND)
        ]
        for chunk in first:
            chunk.ask(0)
        for page in range(1, B24_PAGE):
            if not reader.room():
                break
            for chunk in first:
                if reader.room():
                    chunk.ask_guessed(page + 1)

    def queue_after_first(self) -> None:
        """Deleted or inaccessible invoices: ask for each so the user sees Bitrix24's own words."""
        for item in self.by_id.values():
            if item.invoice_id not in self.seen and item.read_error is None:
                self.reader.add(
                    f"g{item.invoice_id}",
                    KIND.get_commands(item.invoice_id)["item"],
                    lambda result, item=item: setattr(
                        item, "read_error", RetryableError("The invoice is not listed yet", system="bitrix24")
                    ),
                    lambda error, item=item: setattr(item, "read_error", error),
                )

    def finish(self) -> None:
        for chunk in self.chunks:
            if chunk.failed:
                continue
            for row in chunk.rows():
                item = self.by_id.get(int(row.get("ownerId") or 0))
                if item is not None and item.read_error is None:
                    item.rows.append(row)

    # --- what the other stages ask of an invoice ---

    @staticmethod
    def client_of(invoice: dict) -> ClientKey | None:
        company = int(invoice.get("companyId") or 0)
        if company:
            return (ContactLink.Kind.COMPANY.value, company)
        person = int(invoice.get("contactId") or 0)
        if person:
            return (ContactLink.Kind.CONTACT.value, person)
        return None

    @staticmethod
    def stage_of(invoice: dict) -> str:
        return str(invoice.get("stageId") or "")

    @staticmethod
    def to_xero(invoice: dict, rows: list[dict], contact: dict, mapping) -> dict:
        return invoice_to_xero(invoice, rows, contact, mapping)

    @staticmethod
    def totals_gap(invoice: dict, content: dict, mapping):
        return totals_gap(invoice, content, mapping)

    # --- internals ---

    def _take_invoices(self, invoices: list[dict]) -> None:
        for invoice in invoices:
            item = self.by_id.get(int(invoice["id"]))
            if item is not None:
                item.invoice = invoice
                self.seen.add(item.invoice_id)

    def _invoices_failed(self, chunk: list[int]) -> Callable:
        def on_error(error: ExternalAPIError) -> None:
            for invoice_id in chunk:
                self.by_id[invoice_id].read_error = error

        return on_error

    def _new_chunk(self, owners: list[int]) -> _RowChunk:
        chunk = _RowChunk(self.reader, f"r{len(self.chunks)}", owners, self._rows_failed)
        self.chunks.append(chunk)
        return chunk

    def _rows_failed(self, chunk: _RowChunk, error: ExternalAPIError) -> None:
        owners = chunk.owners
        if isinstance(error, RetryableError) or len(owners) == 1:
            for owner in owners:
                self.by_id[owner].read_error = error
            return
        # One invoice of the command was deleted or hidden meanwhile: list the invoices still
        # listed together once more, and each on its own if that fails too.
        listed = [owner for owner in owners if owner in self.seen]  # the others fail as missing invoices
        groups = [listed] if len(listed) < len(owners) and listed else [[owner] for owner in listed]
        for group in groups:
            self._new_chunk(group).ask_guessed(B24_PAGE)


class _RowChunk:
    """The product rows of a group of invoices, read as full pages of one ordered list: the first
    answer's `total` says which `start` offsets are still to fetch. Pages are joined in offset order
    at the end, so each invoice's rows keep the list's order."""

    def __init__(self, reader: Reader, name: str, owners: list[int], on_error: Callable) -> None:
        self.reader = reader
        self.name = name
        self.owners = owners
        self.on_error = on_error
        self.pages: dict[int, list[dict]] = {}
        self.asked: set[int] = set()
        self.total: int | None = None
        self.failed = False

    def ask(self, start: int) -> None:
        if start in self.asked or self.failed:
            return
        self.asked.add(start)
        listed = productrows_list(self.owners, ordered=True)
        self.reader.add(
            f"{self.name}s{start}",
            listed.at(start) if start else listed,
            lambda rows, total, following: self._page(start, rows, total, following),
            self._error,
            follow=False,
        )

    def ask_guessed(self, pages: int) -> None:
        """The first page and up to `pages - 1` more that the guessed row count would fill."""
        wanted = -(-len(self.owners) * ROWS_PER_INVOICE_GUESS // B24_PAGE)
        for n in range(max(1, min(pages, wanted))):
            self.ask(n * B24_PAGE)

    def _page(self, start: int, rows: list[dict], total: int | None, following: int | None) -> None:
        if self.failed:
            return
        self.pages[start] = rows
        if total is not None:
            self.total = total if self.total is None else max(self.total, total)
            for missing in range(0, self.total, B24_PAGE):
                self.ask(missing)
        elif following:
            self.ask(following)  # no count given: page on one by one

    def _error(self, error: ExternalAPIError) -> None:
        if self.failed:
            return
        self.failed = True
        self.pages = {}
        self.on_error(self, error)

    def rows(self) -> list[dict]:
        out: list[dict] = []
        ids: set = set()
        for start in sorted(self.pages):
            for row in self.pages[start]:
                # A row added meanwhile shifts later pages by one: never take a row twice.
                row_id = row.get("id")
                if row_id is not None and row_id in ids:
                    continue
                ids.add(row_id)
                out.append(row)
        return out
