"""The Xero contact an invoice goes to: found (by our ContactNumber, then by exact name) or created.

Called by the push engine with every client (company or person) of a pass that has no ContactLink
yet, so lookups and creations are done in bulk:

- Lookup. A few unknown clients: one `where` OR-chain of ContactNumber==... and Name==... for each,
  chunked so the URL stays short — one GET for up to ~20 clients. Many unknown clients:
  the chains would take a GET per ~20 clients, so page through all contacts instead
  (pageSize=1000, summaryOnly): page 1 tells how many pages there are, and if paging would cost more
  than the chains for what is still missing, the rest is looked up with chains after all.
  A name that a `where` string cannot carry safely (a `"` or a backslash: real Xero answers 400
  QueryParseException) is looked up with `searchTerm` instead, matched exactly on our side.
- Failures are per client. A chain Xero refuses (400) is split in halves and retried, down to one
  term; a single name Xero still refuses falls back to `searchTerm`. A retryable failure (429/503,
  network, the throttle giving up) fails only the clients of that request, with the error, so the
  caller retries just their invoices. A client whose lookup failed is never created (it may exist).
- Creation: PUT /Contacts in batches of 50 with summarizeErrors=false and an Idempotency-Key over
  the batch, so a retried batch replays instead of duplicating. A name that clashes with a contact
  that is not ours (Xero names are unique among active contacts) is retried once as
  "Name (B24-CO-42)".
- Links: ContactLink rows, inserted with ON CONFLICT DO NOTHING and read back, so a second worker
  doing the same concurrently ends with the same single link.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from accounts.models import Portal
from integrations.common.errors import AuthorizationLostError, ExternalAPIError, PermanentError
from integrations.xero.client import XeroClient
from integrations.xero.query import where_cost, where_safe
from integrations.xero.types import Contact, ContactMatch
from sync.mappers.canonical import canonical_hash, idempotency_key
from sync.mappers.contact import contact_number_for
from sync.models import ContactLink

ClientKey = tuple[str, int]  # (ContactLink.Kind value, Bitrix24 id)

BATCH_SIZE = 50
# A `where` chain is sent in the query string; ~1,500 encoded characters keeps the whole URL far
# below the 2,000-8,000 that proxies and servers accept.
WHERE_URL_BUDGET = 1500
PAGE_SIZE = 1000
DUPLICATE_NAME = "already assigned to another contact"


@dataclass
class ContactResult:
    link: ContactLink | None = None
    error: str = ""
    failure: ExternalAPIError | None = None  # the API's error, when the client could not be linked


@dataclass
class _Pending:
    key: ClientKey
    contact: dict  # the Xero contact JSON from company_to_xero_contact / person_to_xero_contact
    found: dict | None = None  # {"ContactID", "Name", "ContactNumber"} of a match in Xero
    renamed: bool = False
    errors: list[str] = field(default_factory=list)
    failure: ExternalAPIError | None = None  # a lookup or create request that failed for this client


def contacts_ensure(
    *, portal: Portal, xero: XeroClient, clients: Mapping[ClientKey, dict]
) -> dict[ClientKey, ContactResult]:
    """A ContactLink (or Xero's/our reason why not) for every client; `clients` are the mapped Xero
    contacts of the Bitrix24 companies/persons that had no link when the caller looked."""
    results: dict[ClientKey, ContactResult] = {}
    existing = _links(portal, clients)
    pending = []
    for key, contact in clients.items():
        if key in existing:
            results[key] = ContactResult(link=existing[key])
        else:
            pending.append(_Pending(key=key, contact=contact))
    if not pending:
        return results

    _find_in_xero(portal, xero, pending)
    to_create = [p for p in pending if p.found is None and p.failure is None]
    _create_in_xero(portal, xero, to_create)

    rows = [
        ContactLink(
            portal=portal,
            bitrix24_kind=p.key[0],
            bitrix24_id=p.key[1],
            xero_contact_id=p.found["ContactID"],
            xero_name=str(p.found.get("Name") or "")[:255],
            xero_contact_number=str(p.found.get("ContactNumber") or "")[:50],
            last_pushed_hash=canonical_hash(p.contact),
        )
        for p in pending
        if p.found is not None
    ]
    # A concurrent worker may have linked the same client (or the same Xero contact) a moment ago:
    # the unique constraints keep one row, and reading back tells which.
    ContactLink.objects.bulk_create(rows, ignore_conflicts=True)
    stored = _links(portal, {p.key: p.contact for p in pending})
    for p in pending:
        if p.key in stored:
            results[p.key] = ContactResult(link=stored[p.key])
        else:
            failure = p.failure or PermanentError(
                "; ".join(p.errors) or "The Xero contact could not be linked.", system="xero"
            )
            results[p.key] = ContactResult(error=failure.message, failure=failure)
    return results


def _links(portal: Portal, keys: Iterable[ClientKey]) -> dict[ClientKey, ContactLink]:
    by_kind: dict[str, list[int]] = {}
    for kind, bitrix24_id in keys:
        by_kind.setdefault(kind, []).append(bitrix24_id)
    out: dict[ClientKey, ContactLink] = {}
    for kind, ids in by_kind.items():
        for link in ContactLink.objects.filter(portal=portal, bitrix24_kind=kind, bitrix24_id__in=ids):
            out[(kind, link.bitrix24_id)] = link
    return out


# --- lookup -----------------------------------------------------------------------------------------


def _summary(contact: Contact) -> dict:
    return {
        "ContactID": contact.contact_id,
        "Name": contact.name,
        "ContactNumber": contact.contact_number,
        "ContactStatus": contact.contact_status or "ACTIVE",
    }


def _name_key(name: str) -> str:
    # Xero compares names without regard to case or surrounding blanks.
    return " ".join(str(name).split()).casefold()


def _find_in_xero(portal: Portal, xero: XeroClient, pending: list[_Pending]) -> None:
    chains_needed = 2 * math.ceil(len(pending) / 40)
    seen: list[dict] = []
    if chains_needed > 2:
        page = 1
        while True:
            try:
                answer = xero.contacts_list(page, page_size=PAGE_SIZE, summary_only=True)
            except AuthorizationLostError:
                raise
            except ExternalAPIError as exc:
                if exc.retryable:
                    _fail_pending([p for p in pending if p.found is None], exc)
                    return
                break  # paging refused: the chains below look up what is still missing
            seen.extend(_summary(c) for c in answer.contacts)
            _match(portal, pending, seen)
            page_count = answer.page_count or 1
            missing = [p for p in pending if p.found is None]
            if page >= page_count or not missing:
                return
            # Paging on costs page_count - page calls; chains for what is still missing may be cheaper.
            if page_count - page > 2 * math.ceil(len(missing) / 40):
                break
            page += 1
        pending = [p for p in pending if p.found is None]
    # Our ContactNumber and the exact name go in the same OR-chain (_match prefers the number): one
    # GET for a pass's few new clients instead of a chain for numbers and then one for names; that
    # GET was paid by every small pass that met a new client (bench/budget.py).
    terms: dict[ContactMatch, list[_Pending]] = {}
    by_search: dict[str, list[_Pending]] = {}
    for p in pending:
        terms.setdefault(ContactMatch.number(p.contact["ContactNumber"]), []).append(p)
        name = p.contact["Name"]
        if where_safe(name):  # else Xero's where cannot carry it: searchTerm below
            terms.setdefault(ContactMatch.name(name), []).append(p)
    refused = _lookup_chains(xero, terms, seen)
    _match(portal, pending, seen)
    for p in pending:
        if p.found is None and p.failure is None and not where_safe(p.contact["Name"]):
            by_search.setdefault(p.contact["Name"], []).append(p)
    for term in refused:
        if term.field == "Name":
            for p in terms[term]:
                if p.found is None:
                    by_search.setdefault(p.contact["Name"], []).append(p)
    for name, group in by_search.items():
        _lookup_search(xero, name, group, seen)
    _match(portal, pending, seen)


def _fail_pending(pending: list[_Pending], error: ExternalAPIError) -> None:
    for p in pending:
        if p.failure is None:
            p.failure = error


def _lookup_chains(
    xero: XeroClient, groups: dict[ContactMatch, list[_Pending]], seen: list[dict]
) -> list[ContactMatch]:
    """Look the terms up in OR-chains; a chain Xero refuses is split down to single terms. Returns the
    single terms Xero refused (their clients are not failed here: the caller may try another way);
    a retryable failure fails the clients of that request."""
    refused: list[ContactMatch] = []
    todo = list(_chains(list(groups)))
    while todo:
        terms = todo.pop(0)
        try:
            found = xero.contacts_find(terms)
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            if exc.retryable:
                for term in terms:
                    _fail_pending(groups[term], exc)
            elif len(terms) > 1:
                half = len(terms) // 2
                todo[:0] = [terms[:half], terms[half:]]
            else:
                refused.append(terms[0])
                for p in groups[terms[0]]:
                    p.errors = [exc.message]
                    p.failure = exc
            continue
        seen.extend(_summary(c) for c in found)
    return refused


def _lookup_search(xero: XeroClient, name: str, group: list[_Pending], seen: list[dict]) -> None:
    """searchTerm matches Name, FirstName, LastName, ContactNumber and EmailAddress by substring;
    _match keeps only an exact name. Pages on while full pages come back."""
    for p in group:
        p.failure = None
    page = 1
    while True:
        try:
            contacts = xero.contacts_search(name, page=page, page_size=PAGE_SIZE)
        except AuthorizationLostError:
            raise
        except ExternalAPIError as exc:
            for p in group:
                p.errors = [exc.message]
                p.failure = exc
            return
        seen.extend(_summary(c) for c in contacts)
        if len(contacts) < PAGE_SIZE:
            return
        page += 1


def _chains(terms: list[ContactMatch]) -> Iterable[list[ContactMatch]]:
    """Groups of terms whose `A OR B OR ...` stays within WHERE_URL_BUDGET once URL-encoded."""
    chunk: list[ContactMatch] = []
    size = 0
    for term in terms:
        cost = where_cost(term)
        if chunk and size + cost > WHERE_URL_BUDGET:
            yield chunk
            chunk, size = [], 0
        chunk.append(term)
        size += cost
    if chunk:
        yield chunk


def _match(portal: Portal, pending: list[_Pending], seen: list[dict]) -> None:
    """Our own contact (same ContactNumber) first; else an active contact of exactly that name that
    is not somebody else's: not carrying another B24-... number and not linked to another client."""
    numbers = {c["ContactNumber"]: c for c in seen if c["ContactNumber"]}
    names: dict[str, dict] = {}
    for c in seen:
        if c["ContactStatus"] == "ACTIVE":
            names.setdefault(_name_key(c["Name"]), c)
    taken = set(
        str(x)
        for x in ContactLink.objects.filter(
            portal=portal, xero_contact_id__in=[c["ContactID"] for c in seen]
        ).values_list("xero_contact_id", flat=True)
    )
    claimed: set[str] = set()
    for p in pending:
        if p.found is None and p.contact["ContactNumber"] in numbers:
            p.found = numbers[p.contact["ContactNumber"]]
            claimed.add(p.found["ContactID"])
    for p in pending:
        if p.found is not None:
            continue
        candidate = names.get(_name_key(p.contact["Name"]))
        if candidate is None or candidate["ContactID"] in taken or candidate["ContactID"] in claimed:
            continue
        if candidate["ContactNumber"].startswith("B24-") and candidate["ContactNumber"] != p.contact["ContactNumber"]:
            continue  # created by us for another Bitrix24 client of the same name
        p.found = candidate
        claimed.add(candidate["ContactID"])


# --- creation ---------------------------------------------------------------------------------------


def _create_in_xero(portal: Portal, xero: XeroClient, to_create: list[_Pending]) -> None:
    retry: list[_Pending] = []
    for start in range(0, len(to_create), BATCH_SIZE):
        batch = to_create[start : start + BATCH_SIZE]
        retry.extend(p for p in _create_batch(portal, xero, batch) if not p.renamed)
    for p in retry:
        # Somebody else's contact has this name: ours gets our external id appended, once.
        suffix = f" ({p.contact['ContactNumber']})"
        p.contact = {**p.contact, "Name": p.contact["Name"][: 255 - len(suffix)] + suffix}
        p.renamed = True
        p.errors = []
    for start in range(0, len(retry), BATCH_SIZE):
        _create_batch(portal, xero, retry[start : start + BATCH_SIZE])


def _create_batch(portal: Portal, xero: XeroClient, batch: list[_Pending]) -> list[_Pending]:
    """Create one batch; returns the elements refused only for a duplicate name."""
    if not batch:
        return []
    material = "|".join(f"{p.contact['ContactNumber']}={canonical_hash(p.contact)}" for p in batch)
    key = idempotency_key(portal.member_id, "contacts", hashlib.sha256(material.encode()).hexdigest(), operation="con")
    try:
        answers = xero.contacts_create([p.contact for p in batch], idempotency_key=key)
    except AuthorizationLostError:
        raise
    except ExternalAPIError as exc:
        if not exc.retryable and len(batch) > 1:
            # Refused as a whole: halves, down to the one contact Xero refuses.
            half = len(batch) // 2
            return _create_batch(portal, xero, batch[:half]) + _create_batch(portal, xero, batch[half:])
        for p in batch:
            p.errors = [exc.message]
            p.failure = exc
        return []
    duplicates = []
    for p, answer in zip(batch, answers, strict=False):
        if answer.ok:
            p.found = _summary(answer.result)
            continue
        p.errors = list(answer.errors) or ["Xero did not create the contact."]
        if any(DUPLICATE_NAME in message for message in answer.errors):
            duplicates.append(p)
    return duplicates


def client_key(kind: str, bitrix24_id: int) -> ClientKey:
    return (kind, int(bitrix24_id))


__all__ = ["ClientKey", "ContactResult", "client_key", "contact_number_for", "contacts_ensure"]
