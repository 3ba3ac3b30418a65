"""Zip a directory reproducibly (sorted entries, fixed timestamps and modes).

The same sources give the same bytes, so Terraform's ``source_code_hash`` changes only when code does.
Usage: python tools/deterministic_zip.py SOURCE_DIR OUTPUT_ZIP
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def build(source: Path, output: Path) -> int:
    files = sorted(path for path in source.rglob("*") if path.is_file())
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return len(files)


if __name__ == "__main__":
    count = build(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: {count} files")
