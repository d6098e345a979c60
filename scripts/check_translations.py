#!/usr/bin/env python3
"""Fails (exit 1, listing them) when a marked string is not translated in every shipped language.

The marked strings are extracted afresh with ``manage.py makemessages`` (GNU
gettext) in a temporary copy of the project, so the committed catalogs are
never modified. For each language of settings.LANGUAGES besides English, every
extracted string must be in the committed catalog, translated (each plural form
the language has: Arabic has six) and not fuzzy; and a translation must use the
placeholders of its source (python-format ``%(n)s``, brace ``{x}``), or it would
fail or lie at run time. Where msgfmt is installed, ``msgfmt -c --check-format``
passes too. Run by ``make test``: ``python scripts/check_translations.py``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("fr", "es", "de", "nl", "ar")  # settings.LANGUAGES besides English (checked in main)
# As the Makefile's `messages` target.
MAKEMESSAGES = ["makemessages", *(f"-l{code}" for code in LANGUAGES),
                "--ignore=.venv", "--ignore=node_modules", "--ignore=tests", "--ignore=bench", "--ignore=static",
                "--ignore=staticfiles", "--ignore=var", "--add-location=file", "--no-obsolete"]
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "node_modules", "var", "staticfiles", "__pycache__", "*.mo", ".*_cache")

PYTHON_FORMAT = re.compile(r"%(?:\((?P<name>[^)]+)\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")
BRACE_FORMAT = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")


def placeholders(text: str, flags: list[str]) -> list[str]:
    """The placeholders of ``text`` as sorted strings, by the entry's format flag."""
    found: list[str] = []
    if "python-format" in flags:
        for match in PYTHON_FORMAT.finditer(text):
            if match.group(0) != "%%":
                found.append(match.group(0) if match.group("name") is None else f"%({match.group('name')})")
    if "python-brace-format" in flags:
        found += [f"{{{name}}}" for name in BRACE_FORMAT.findall(text)]
    return sorted(found)


def nplurals(catalog: polib.POFile) -> int:
    match = re.search(r"nplurals\s*=\s*(\d+)", catalog.metadata.get("Plural-Forms", ""))
    return int(match.group(1)) if match else 2


def entry_problems(entry: polib.POEntry, forms: int) -> list[str]:
    """What is wrong with one entry of a catalog: untranslated, fuzzy, placeholders."""
    problems = []
    if "fuzzy" in entry.flags:
        problems.append("fuzzy")
    if entry.msgid_plural:
        strings = [entry.msgstr_plural.get(index, "") for index in range(forms)]
        if not all(strings):
            problems.append(f"untranslated ({sum(1 for s in strings if s)} of {forms} plural forms)")
        allowed = set(placeholders(entry.msgid, entry.flags)) | set(placeholders(entry.msgid_plural, entry.flags))
        for index, string in enumerate(strings):
            # A plural form may leave the count out ("one person"), never add a placeholder.
            if string and (extra := set(placeholders(string, entry.flags)) - allowed):
                problems.append(f"msgstr[{index}] has placeholders not in the source: {', '.join(sorted(extra))}")
    elif not entry.msgstr:
        problems.append("untranslated")
    elif placeholders(entry.msgstr, entry.flags) != placeholders(entry.msgid, entry.flags):
        problems.append(
            f"placeholders differ: source {placeholders(entry.msgid, entry.flags)}, translation {placeholders(entry.msgstr, entry.flags)}"
        )
    return problems


def catalog_problems(fresh: polib.POFile, committed: polib.POFile | None) -> list[str]:
    """Every problem of one language: ``fresh`` is the catalog as makemessages
    makes it now (the committed translations merged in), ``committed`` the
    catalog in the repository (None: there is none)."""
    known = {(entry.msgctxt, entry.msgid) for entry in committed} if committed is not None else set()
    forms = nplurals(committed if committed is not None else fresh)
    problems = []
    for entry in fresh:
        if entry.obsolete:
            continue
        where = f"{entry.msgid!r}" + (f" (context {entry.msgctxt!r})" if entry.msgctxt else "")
        if entry.occurrences:
            where += " at " + ", ".join(sorted({path for path, _line in entry.occurrences}))
        if (entry.msgctxt, entry.msgid) not in known:
            problems.append(f"{where}: missing from the catalog (run `make messages` and translate it)")
            continue
        problems += [f"{where}: {problem}" for problem in entry_problems(entry, forms)]
    return problems


def extract_fresh(root: Path, workdir: Path) -> Path:
    """Copy the project into ``workdir`` and run makemessages there; return the copy's locale dir."""
    copy = workdir / "project"
    shutil.copytree(root, copy, ignore=COPY_IGNORED, symlinks=False)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enrollment_site.settings"}
    subprocess.run([sys.executable, "manage.py", *MAKEMESSAGES, "-v0"], cwd=copy, env=env, check=True)
    return copy / "locale"


def msgfmt_problems(locale_dir: Path) -> list[str]:
    if shutil.which("msgfmt") is None:
        return []
    problems = []
    for code in LANGUAGES:
        po_path = locale_dir / code / "LC_MESSAGES" / "django.po"
        result = subprocess.run(["msgfmt", "-c", "--check-format", "-o", os.devnull, str(po_path)], capture_output=True, text=True)
        if result.returncode:
            problems.append(f"msgfmt -c --check-format {po_path.relative_to(locale_dir.parent)}:\n{result.stderr.strip()}")
    return problems


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")
    from django.conf import settings

    shipped = tuple(code for code, _name in settings.LANGUAGES if code != "en")
    if sorted(shipped) != sorted(LANGUAGES):
        print(f"check_translations: LANGUAGES here {LANGUAGES} differ from settings.LANGUAGES {shipped}: update this script", file=sys.stderr)
        return 1
    if shutil.which("xgettext") is None:
        print("check_translations: GNU gettext (xgettext, msgmerge) is needed to extract the marked strings; install gettext", file=sys.stderr)
        return 1
    committed_dir = ROOT / "locale"
    report: list[str] = msgfmt_problems(committed_dir)
    with tempfile.TemporaryDirectory() as workdir:
        fresh_dir = extract_fresh(ROOT, Path(workdir))
        for code in LANGUAGES:
            committed_path = committed_dir / code / "LC_MESSAGES" / "django.po"
            committed = polib.pofile(str(committed_path)) if committed_path.exists() else None
            fresh = polib.pofile(str(fresh_dir / code / "LC_MESSAGES" / "django.po"))
            report += [f"[{code}] {problem}" for problem in catalog_problems(fresh, committed)]
    if report:
        print(f"check_translations: {len(report)} problem(s) in the translations:", file=sys.stderr)
        print("\n".join(report), file=sys.stderr)
        return 1
    print(f"check_translations: every marked string is translated in {', '.join(LANGUAGES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
