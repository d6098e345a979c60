#!/usr/bin/env python3
"""Compiles locale/*/LC_MESSAGES/*.po into the .mo files Django reads.

With GNU gettext's msgfmt on the PATH it is used (as by ``manage.py
compilemessages``, format strings checked); without it, Babel compiles the
catalogs, so a machine without gettext (the Docker image) still runs translated.
Fuzzy entries are left out either way, as msgfmt does. Run from anywhere:
``python scripts/compile_messages.py [locale-dir]``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_with_babel(po_path: Path, mo_path: Path) -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=po_path.parent.parent.name)
    with mo_path.open("wb") as mo_file:
        write_mo(mo_file, catalog, use_fuzzy=False)


def compile_catalogs(locale_dir: Path = LOCALE_DIR, *, use_msgfmt: bool | None = None) -> list[Path]:
    """Compile every .po under ``locale_dir`` next to itself; return the .mo paths.
    ``use_msgfmt`` None: msgfmt when it is installed, else Babel."""
    if use_msgfmt is None:
        use_msgfmt = shutil.which("msgfmt") is not None
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if use_msgfmt:
            subprocess.run(["msgfmt", "--check-format", "-o", str(mo_path), str(po_path)], check=True)
        else:
            compile_with_babel(po_path, mo_path)
        written.append(mo_path)
    return written


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else LOCALE_DIR
    paths = compile_catalogs(folder)
    tool = "msgfmt" if shutil.which("msgfmt") else "Babel (no msgfmt on this machine)"
    print(f"compiled {len(paths)} catalogs with {tool}")
