"""Idempotency-Key replay for the fake Accounting API's writes (xero-api.md §10).

Xero documents the header (optional, at most 128 characters, on PUT/POST/PATCH) but not its semantics
(§14). What this fake does, so the connector is tested against the strict reading:

- Keys are scoped per tenant: the same key under two organisations is two keys.
- The first answer for (tenant, key) is kept for `ttl_s` of sandbox clock (24 h by default), together
  with a fingerprint of the request: method, path and the SHA-256 of the body bytes.
- A retry with the same fingerprint gets the stored status and JSON body again and changes nothing.
- The same key with a different request is refused with 400 (IdempotencyError), at once, without
  waiting for the first request to finish: a client bug, not something to paper over.
- 2xx and 4xx answers are kept (a replayed validation error stays an error); 5xx and 429 are not, as
  the client is expected to retry those and the retry must really run. When the first request keeps no
  answer, the key is free again for any request.
- A duplicate arriving while the first is still running waits for it (one lock per key), then replays.

Callers must enter `guard` before taking `sandbox.lock`: a waiting duplicate would otherwise hold the
world's lock while the first request needs it to finish.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
from dataclasses import dataclass, field

MAX_KEY_LENGTH = 128
DAY = 24 * 3600.0


class IdempotencyError(Exception):
    """The key is unusable (too long, or reused for a different request): answer 400 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Entry:
    fingerprint: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    response: tuple[int, dict] | None = None
    stored_at: float = 0.0  # sandbox clock


class _Replay:
    """What `guard` yields: the stored answer to send again, or a place to put the first answer."""

    def __init__(self, response: tuple[int, dict] | None = None) -> None:
        self.response = response
        self.remembered: tuple[int, dict] | None = None

    def remember(self, status: int, body: dict) -> None:
        self.remembered = (status, copy.deepcopy(body))


class IdempotencyStore:
    def __init__(self, sandbox, ttl_s: float = DAY) -> None:
        self.sandbox = sandbox
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "ttl_s": self.ttl_s,
                "keys": [
                    {"tenant_id": tenant, "key": key, "status": entry.response[0] if entry.response else None}
                    for (tenant, key), entry in self._entries.items()
                ],
            }

    @contextlib.contextmanager
    def guard(self, tenant_id: str, key: str | None, method: str, path: str, body: bytes):
        """Wrap a write. Yields a Replay: if `replay.response` is set, answer with it (status, json
        body) and do nothing else; otherwise do the write and call `replay.remember(status, body)`.
        A duplicate arriving while the first is still running waits for it. Raises IdempotencyError."""
        if not key:
            yield _Replay()
            return
        if len(key) > MAX_KEY_LENGTH:
            raise IdempotencyError(f"Idempotency-Key must be {MAX_KEY_LENGTH} characters or fewer")
        slot = (tenant_id, key)
        fingerprint = _fingerprint(method, path, body or b"")
        entry = self._acquire(slot, fingerprint)
        try:
            if entry.response is not None:
                status, stored = entry.response
                yield _Replay((status, copy.deepcopy(stored)))
                return
            replay = _Replay()
            try:
                yield replay
            finally:
                self._settle(slot, entry, replay.remembered)
        finally:
            entry.lock.release()

    def _acquire(self, slot: tuple[str, str], fingerprint: str) -> _Entry:
        """The key's entry, locked by us. Loops when the entry was dropped while we waited for it."""
        while True:
            with self._lock:
                entry = self._entries.get(slot)
                if entry is not None and self._expired(entry):
                    del self._entries[slot]
                    entry = None
                if entry is None:
                    entry = self._entries[slot] = _Entry(fingerprint)
            if entry.fingerprint != fingerprint:
                raise IdempotencyError(
                    "Idempotency-Key has already been used for a different request "
                    "(another method, path or body); use a new key for a new request"
                )
            entry.lock.acquire()
            with self._lock:
                if self._entries.get(slot) is entry:
                    return entry
            entry.lock.release()

    def _settle(self, slot: tuple[str, str], entry: _Entry, answer: tuple[int, dict] | None) -> None:
        with self._lock:
            if answer is not None and _worth_keeping(answer[0]):
                entry.response = answer
                entry.stored_at = self.sandbox.clock.now()
            elif self._entries.get(slot) is entry:
                # Nothing to replay: the next request with this key runs for real, whatever its body.
                del self._entries[slot]

    def _expired(self, entry: _Entry) -> bool:
        if entry.response is None:
            return False  # still running
        return self.sandbox.clock.now() - entry.stored_at >= self.ttl_s


def _fingerprint(method: str, path: str, body: bytes) -> str:
    return f"{method.upper()} {path} {hashlib.sha256(body).hexdigest()}"


def _worth_keeping(status: int) -> bool:
    return 200 <= status < 500 and status != 429
