"""`python -m bench [name...]`: run the named benches (all by default) and print their figures.

Needs what `make bench` gives: DATABASE_URL (PostgreSQL) and REDIS_URL. The benches never touch the
configured database's data: a throwaway database (Django's test-database utilities, named
bench_<name>) is created for the run and dropped afterwards. Redis keys are per tenant, and every
bench's sandbox makes fresh tenants, so a shared Redis is left alone too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import secrets
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet


def _bench_names() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    available = _bench_names()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benches to run (default: all of {', '.join(available)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; available: {', '.join(available)}")
    missing = [v for v in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(v)]
    if missing:
        print(f"python -m bench needs {' and '.join(missing)} (run it with `make bench`).", file=sys.stderr)
        return 2

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    # Every process of a run (this one, the web server, the worker) must share one pair of keys:
    # fresh ones per run unless given, so nothing encrypted outlives it.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    import django

    django.setup()
    from django.db import connection

    configured = connection.settings_dict["NAME"]
    # Not test_<name>: that is the test suite's database, perhaps in use by a run of it now.
    connection.settings_dict["TEST"]["NAME"] = f"bench_{configured}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    from bench._harness import failed_jobs_count

    missed: list[str] = []
    try:
        for name in args.names or available:
            module = importlib.import_module(f"bench.{name}")
            print(f"== bench {name} ==", flush=True)
            started = time.monotonic()
            failed_before = failed_jobs_count()
            result = module.run()
            print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
            # Any job or inbox row that failed during the bench fails it, whatever its figures.
            failed = failed_jobs_count() - failed_before
            if failed and isinstance(result, dict):
                print(f"   {failed} jobs/inbox rows failed during the bench", flush=True)
                result = {**result, "failed_jobs": max(failed, result.get("failed_jobs", 0)), "ok": False}
            # A bench that reports {"ok": False} missed a target: the run fails (CI, scripts).
            if isinstance(result, dict) and result.get("ok") is False:
                missed.append(name)
            if isinstance(result, dict):
                _record(name, result, time.monotonic() - started)
    finally:
        connection.creation.destroy_test_db(configured, verbosity=0)
    if missed:
        print(f"missed a target: {', '.join(missed)}", file=sys.stderr, flush=True)
        return 1
    return 0


RESULTS = Path(__file__).resolve().parent / "results"


def _record(name: str, result: dict, seconds: float) -> None:
    """Keep the bench's figures (bench/results/<name>.json) and rewrite bench/RESULTS.md from every
    kept result, so the figures the README points to are the ones a bench printed, not typed in."""
    RESULTS.mkdir(exist_ok=True)
    entry = {
        "bench": name,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "seconds": round(seconds, 1),
        "figures": {k: v for k, v in result.items() if k != "ok"},
        "ok": result.get("ok"),
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(entry, indent=2, sort_keys=True, default=str) + "\n")
    write_results_table()


def write_results_table() -> None:
    """bench/RESULTS.md from every kept result (also after results were merged from several runs)."""
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        kept = json.loads(path.read_text())
        figures = ", ".join(f"{k} {v}" for k, v in kept["figures"].items())
        verdict = {True: "within target", False: "MISSES target"}.get(kept.get("ok"), "-")
        rows.append(f"| `{kept['bench']}` | {figures} | {verdict} | {kept['when']} ({kept['machine']}) |")
    (RESULTS.parent / "RESULTS.md").write_text(
        "# Benchmark figures\n\nWritten by `python -m bench` (bench/__main__.py) from each bench's last run; "
        "do not edit by hand.\n\n| bench | figures | verdict | run |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
