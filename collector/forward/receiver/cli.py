"""`canhgac-collector receiver run`: the demo and test receiver over mutual TLS."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

from canhgac.logs import setup_logging
from canhgac.netaddr import parse_host_port


def cmd_receiver_run(ns: argparse.Namespace) -> int:
    import uvicorn

    from collector.forward.receiver.app import build_receiver

    setup_logging("info", "text")
    host, port = parse_host_port(ns.listen, allow_zero=False)
    app = build_receiver(ns.data_dir)
    # Mutual TLS always: a sender without a certificate from --client-ca is refused.
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(ns.tls_cert),
        ssl_keyfile=str(ns.tls_key),
        ssl_ca_certs=str(ns.client_ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_config=None,
        access_log=False,
        # Senders keep connections open; a stop must not wait for them to go.
        timeout_graceful_shutdown=2,
    )
    return 0


def add_receiver_commands(sub: Any) -> None:
    receiver = sub.add_parser(
        "receiver", help="a receiver of forwarded reports, for demos and tests"
    ).add_subparsers(dest="receiver_command", required=True)
    run = receiver.add_parser("run", help="serve the national JSON endpoint and TAXII")
    run.add_argument("--listen", default="127.0.0.1:9443", help="HOST:PORT")
    run.add_argument("--tls-cert", type=Path, required=True, help="server certificate (PEM)")
    run.add_argument("--tls-key", type=Path, required=True, help="server private key (PEM)")
    run.add_argument(
        "--client-ca", type=Path, required=True, help="CA that signs senders' certificates"
    )
    run.add_argument("--data-dir", type=Path, required=True, help="where received reports go")
    run.set_defaults(fn=cmd_receiver_run)
