"""scripts/check_translations.py and scripts/compile_messages.py on a tiny Arabic catalog."""

import gettext
import importlib.util
from pathlib import Path

import polib
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "committed.po"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checker():
    return _script("check_translations")


def _problems(checker, *, extra_source: str = "") -> list[str]:
    committed = polib.pofile(str(FIXTURE))
    # makemessages' output: the committed entries, plus whatever was marked since.
    fresh = polib.pofile(FIXTURE.read_text(encoding="utf-8") + extra_source)
    return checker.catalog_problems(fresh, committed)


def test_each_kind_of_problem_is_listed_by_its_string(checker):
    problems = _problems(checker)
    assert problems == [
        "'%(n)s code' at accounts/views.py: untranslated (2 of 6 plural forms)",
        "'Log out' at accounts/views.py: fuzzy",
        "'Hello %(name)s' at accounts/views.py: placeholders differ: source ['%(name)'], translation ['%(nom)']",
        "'Not translated' at accounts/views.py: untranslated",
        "'Times in {zone}' at templates/base.html: placeholders differ: source ['{zone}'], translation []",
    ]


def test_a_string_marked_since_the_catalog_was_refreshed_is_missing(checker):
    problems = _problems(checker, extra_source='\n#: courses/views.py\nmsgid "New string"\nmsgstr ""\n')
    assert "'New string' at courses/views.py: missing from the catalog (run `make messages` and translate it)" in problems


def test_a_complete_catalog_passes_and_a_plural_form_may_leave_out_the_count(checker):
    complete = polib.pofile(str(FIXTURE))
    for entry in list(complete):
        if entry.msgid != "Saved." and entry.msgid != "%(n)s person":
            complete.remove(entry)
    assert checker.catalog_problems(complete, complete) == []


def test_a_plural_form_may_not_add_a_placeholder(checker):
    entry = polib.POEntry(msgid="%(n)s person", msgid_plural="%(n)s people", flags=["python-format"],
                          msgstr_plural={0: "%(n)s", 1: "%(name)s"})
    assert checker.entry_problems(entry, 2) == ["msgstr[1] has placeholders not in the source: %(name)"]


def test_babel_compiles_a_catalog_without_msgfmt_with_its_six_arabic_forms(tmp_path):
    compiler = _script("compile_messages")
    folder = tmp_path / "ar" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.po").write_text(FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    [mo_path] = compiler.compile_catalogs(tmp_path, use_msgfmt=False)
    with mo_path.open("rb") as mo_file:
        catalog = gettext.GNUTranslations(mo_file)
    assert catalog.gettext("Saved.") == "تم الحفظ."
    assert catalog.ngettext("%(n)s person", "%(n)s people", 2) == "شخصان"
    assert catalog.ngettext("%(n)s person", "%(n)s people", 11) == "%(n)s شخصًا"
    # A fuzzy entry is left out, as msgfmt leaves it out: the English shows.
    assert catalog.gettext("Log out") == "Log out"
