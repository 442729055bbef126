"""Idempotency-Key replay. PLACEHOLDER with the final interface; the real one replaces it."""

from __future__ import annotations

import contextlib


class IdempotencyError(Exception):
    """The key is unusable (too long, or reused for a different request): answer 400 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IdempotencyStore:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def reset(self) -> None:
        pass

    @contextlib.contextmanager
    def guard(self, tenant_id: str, key: str | None, method: str, path: str, body: bytes):
        """Wrap a write. Yields a Replay: if `replay.response` is set, answer with it (status, json
        body) and do nothing else; otherwise do the write and call `replay.remember(status, body)`.
        A duplicate arriving while the first is still running waits for it. Raises IdempotencyError."""
        yield _Replay()


class _Replay:
    response: tuple[int, dict] | None = None

    def remember(self, status: int, body: dict) -> None:
        pass
