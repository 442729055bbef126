"""What the CPU scripts (ingest_cpu, inbox_cpu, push_cpu) share: production settings with fresh
keys, a throwaway database, and the CPU of this connection's PostgreSQL backend."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def production_settings(**extra: str) -> None:
    """DEBUG off, as in production, with keys made for this run (nothing encrypted outlives it)."""
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "connector.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SECURE_SSL_REDIRECT": "0",
            **extra,
        }
    )


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[None]:
    """Django set up on a database `<prefix>_<configured name>`, created now and dropped after.
    Not test_<name>: that is the test suite's database, perhaps in use by a run of it now."""
    import django

    django.setup()
    from django.db import connection

    configured = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{prefix}_{configured}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.close()
        connection.creation.destroy_test_db(configured, verbosity=0)


def backend_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend (same machine: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
