"""A real collector as the parent tier: UpstreamService is served on its ingest port."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from collector.app import CollectorApp
from collector.forward.children import issue_child
from collector.forward.parent import ParentGrpcSettings, build
from tests.collector.forward.test_stix import item, known_alert
from tests.collector.ingest.conftest import collector_config


async def test_a_collector_accepts_a_child_collector(tmp_path: Path) -> None:
    app = CollectorApp(collector_config(tmp_path / "parent"))
    await app.start()
    try:
        pki = app.config.state_dir / "pki"
        issued = await app.store.run(
            issue_child,
            app.store.store,
            (pki / "ca.crt").read_bytes(),
            (pki / "ca.key").read_bytes(),
            "lang-son",
            dt.datetime.now(dt.UTC),
        )
        (tmp_path / "child.crt").write_bytes(issued.cert_pem)
        (tmp_path / "child.key").write_bytes(issued.key_pem)
        settings = ParentGrpcSettings(
            target=f"localhost:{app.grpc_port}",
            ca_file=pki / "ca.crt",
            client_cert_file=tmp_path / "child.crt",
            client_key_file=tmp_path / "child.key",
        )
        destination = build("ministry", settings, state_dir=tmp_path, collector="lang-son")
        try:
            alert = known_alert(id="child-alert-1", origin="")
            assert await destination.send([item("alert", alert.id, alert=alert)]) == {alert.id}
        finally:
            await destination.close()
        stored = await app.store.run(app.store.store.get_alert, "child-alert-1")
        assert stored is not None
        assert stored.alert.origin == "lang-son"
    finally:
        await app.stop(grace=0.5)
