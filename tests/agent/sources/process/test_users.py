"""uid -> name from a passwd file."""

from __future__ import annotations

import os
from pathlib import Path

from agent.sources.process.users import RECHECK_SECONDS, PasswdUsers, parse_passwd


def test_parse_passwd_skips_malformed_lines() -> None:
    text = (
        "root:x:0:0:root:/root:/bin/bash\n# comment\nbad\nx:x:notanumber:0::/:\n"
        "bob:x:1000:1000::/home/bob:/bin/sh\nalias:x:0:0::/:\n"
    )
    assert parse_passwd(text) == {0: "root", 1000: "bob"}


def test_reloads_when_the_file_changes(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    now = [0.0]
    users = PasswdUsers(tmp_path, monotonic=lambda: now[0])
    assert (users(0), users(1001)) == ("root", "")
    passwd.write_text("root:x:0:0::/root:/bin/sh\ncarol:x:1001:1001::/home/carol:/bin/sh\n")
    os.utime(passwd, ns=(1, 1))
    assert users(1001) == ""  # not re-checked yet
    now[0] += RECHECK_SECONDS
    assert users(1001) == "carol"


def test_missing_file_gives_empty_names(tmp_path: Path) -> None:
    assert PasswdUsers(tmp_path)(0) == ""
