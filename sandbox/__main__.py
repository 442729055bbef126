"""`python -m sandbox --port PORT`: serve both fakes on 127.0.0.1:PORT until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from werkzeug.serving import make_server

from sandbox.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(argv)

    base = f"http://{args.host}:{args.port}"
    app = create_app(base_url=base)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True)
    # Threads per request; allow a deep accept queue for bursts from several workers.
    server.socket.listen(256)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Sandbox listening on {base}", flush=True)
    print(f"  Xero:      {base}/xero/api.xro/2.0  (identity {base}/xero/identity/connect/token)", flush=True)
    print(f"  Bitrix24:  {base}/bitrix24/rest/  (OAuth {base}/bitrix24/oauth/token/)", flush=True)
    print(f"  Portal UI: {base}/bitrix24/portal/", flush=True)
    print(f"  Control:   {base}/_sandbox/state", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
