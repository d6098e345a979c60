"""The compiled catalogs the translated-page tests read.

The .mo files are not in git (`make test` compiles them first); a test run on
its own compiles any that is missing or older than its .po (with
scripts/compile_messages.py, as `make` does) and makes Django read them afresh."""

import importlib.util
from pathlib import Path

from django.utils.translation.reloader import translation_file_changed

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
_COMPILER = Path(__file__).resolve().parents[2] / "scripts" / "compile_messages.py"


def ensure_compiled() -> None:
    stale = [
        po for po in LOCALE_DIR.glob("*/LC_MESSAGES/*.po")
        if not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if not stale:
        return
    spec = importlib.util.spec_from_file_location("compile_messages", _COMPILER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.compile_catalogs(LOCALE_DIR)
    # Django caches the catalogs per process: drop them, as the dev server does when a .mo changes.
    translation_file_changed(sender=None, file_path=LOCALE_DIR / "fr" / "LC_MESSAGES" / "django.mo")
