"""Config validation, root resolution and account lookups on fixture trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sources.fim import FimConfig
from agent.sources.fim.accounts import AccountNames, authorized_keys_paths
from agent.sources.fim.roots import Scope, canonical, configured_roots
from canhgac.strictmodel import ValidationError


def test_defaults_and_validation() -> None:
    cfg = FimConfig()
    assert "/etc/shadow" in cfg.paths
    assert (cfg.max_file_bytes, cfg.max_files) == (64 * 1024 * 1024, 200_000)
    assert (cfg.rescan_interval_s, cfg.settle_ms) == (3600, 200)
    with pytest.raises(ValidationError):
        FimConfig(rescan_interval_s=59)
    with pytest.raises(ValidationError, match="absolute"):
        FimConfig(paths=["etc/passwd"])
    with pytest.raises(ValidationError, match="twice"):
        FimConfig(web_roots=["/var/www", "/var/www"])
    with pytest.raises(ValidationError):
        FimConfig.model_validate({"unknown": 1})


def test_roots_resolve_symlinked_parents_and_drop_nested(tmp_path: Path) -> None:
    real = tmp_path / "usr" / "lib"
    (real / "systemd").mkdir(parents=True)
    (tmp_path / "lib").symlink_to(real)
    www = tmp_path / "www"
    (www / "html").mkdir(parents=True)
    cfg = FimConfig(
        paths=[str(tmp_path / "lib" / "systemd"), str(real / "systemd"), str(tmp_path / "f")],
        web_roots=[str(www), str(www / "html")],
        home_authorized_keys=False,
    )
    assert configured_roots(cfg, tmp_path) == sorted(
        [str(real / "systemd"), str(www), str(tmp_path / "f")]
    )
    link = tmp_path / "linkfile"
    link.symlink_to(tmp_path / "f")
    assert canonical(str(link)) == str(link)  # a file root is never resolved itself


def test_authorized_keys_for_login_users_with_real_homes(tmp_path: Path) -> None:
    (tmp_path / "home" / "bob").mkdir(parents=True)
    (tmp_path / "passwd").write_text(
        "root:x:0:0::/:/bin/bash\n"  # home "/" is not a real home
        f"bob:x:1000:1000::{tmp_path}/home/bob:/bin/bash\n"
        f"svc:x:998:998::{tmp_path}/home/bob:/usr/sbin/nologin\n"
        f"ghost:x:1001:1001::{tmp_path}/home/ghost:/bin/sh\n"  # home does not exist
        "broken line\n"
    )
    assert authorized_keys_paths(tmp_path) == [f"{tmp_path}/home/bob/.ssh/authorized_keys"]


def test_account_names_reload_on_change(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    (tmp_path / "group").write_text("wheel:x:10:\n")
    names = AccountNames(tmp_path)
    names.refresh()
    assert (names.user(0), names.group(10), names.user(5)) == ("root", "wheel", "")
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/bash\nmallory:x:5:5::/:/bin/sh\n")
    names.refresh()
    assert names.user(5) == "mallory"


def test_scope() -> None:
    scope = Scope(["/etc/passwd", "/var/www"], ["*.swp"])
    assert scope.tracks("/var/www/index.php")
    assert not scope.tracks("/var/www/.index.php.swp")
    assert not scope.tracks("/var/wwwx")
    assert not scope.tracks("/etc/passwd-")
    assert scope.root_of("/etc/passwd") == "/etc/passwd"
