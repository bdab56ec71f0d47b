"""Regenerate the Python code for the wire contract.

Reads protos/canhgac/v1/*.proto and writes canhgac/v1/*_pb2.py, *_pb2_grpc.py and their .pyi
stubs. The generated package is never edited by hand. `--check` regenerates into a temporary
directory and exits 1 when the committed files differ (CI runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # untyped: grpc_tools.* is in the mypy overrides

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = Path("canhgac") / "v1"
INIT = '"""Generated wire contract v1 (scripts/gen_protos.py); do not edit."""\n'


def generate(out_root: Path) -> list[Path]:
    protos = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out_root / PACKAGE / "__init__.py").write_text(INIT)
    (out_root / PACKAGE / "py.typed").write_text("")
    return sorted((out_root / PACKAGE).iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    ns = parser.parse_args()
    if not ns.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [
            p.name
            for p in fresh
            if not (ROOT / PACKAGE / p.name).exists()
            or not filecmp.cmp(p, ROOT / PACKAGE / p.name, shallow=False)
        ]
        committed = {p.name for p in (ROOT / PACKAGE).iterdir() if p.name != "__pycache__"}
        extra = committed - {p.name for p in fresh}
    if stale or extra:
        print(f"generated code is stale: {sorted(stale)} extra: {sorted(extra)}", file=sys.stderr)
        print("run: python scripts/gen_protos.py", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
