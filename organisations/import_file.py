"""The organisation import's file: the template to fill in, reading an
uploaded xlsx or UTF-8 CSV safely, and checking its rows. No database access
here: ``organisations/services/imports.py`` looks up the courses and units the
file names, keeps the checked rows and runs the import.

Uploaded files are hostile until proven otherwise. They are read in a child
process with a time limit and a memory ceiling (``enrollment_site.lib.uploads``),
from a job, never in a web request; the reader (``upload_reader.py``) checks
every zip entry before openpyxl sees it, and openpyxl parses XML through
defusedxml (asserted below too). Every error names its row or the limit; a
file that fails the check writes nothing.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openpyxl
from django.conf import settings
from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from enrollment_site.lib.errors import AppError
from enrollment_site.lib.identifiers import normalize_email
from enrollment_site.lib.upload_reader import Limits
from enrollment_site.lib.uploads import UploadRefused, read_upload

from .models import UnitKind

if TYPE_CHECKING:
    from courses.models import Course

# Refuse to run at all if openpyxl would parse XML without defusedxml.
assert openpyxl.DEFUSEDXML, "defusedxml must be installed: openpyxl would expand XML entities"  # noqa: S101

MAX_BYTES = getattr(settings, "ORGANISATION_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
MAX_ROWS = getattr(settings, "ORGANISATION_IMPORT_MAX_ROWS", 50_000)
MAX_COLUMNS = 100
MAX_ZIP_ENTRIES = 200

FIELDS = ("email", "first name", "last name", "company", "department", "team", "function", "language")
# The template's headings, in the language of the person who asks for it. A
# file is read by the English names or by their translation into any of the
# site's languages (``_norm_header``).
FIELD_HEADINGS = {
    "email": pgettext_lazy("import column", "email"),
    "first name": pgettext_lazy("import column", "first name"),
    "last name": pgettext_lazy("import column", "last name"),
    "company": pgettext_lazy("import column", "company"),
    "department": pgettext_lazy("import column", "department"),
    "team": pgettext_lazy("import column", "team"),
    "function": pgettext_lazy("import column", "function"),
    "language": pgettext_lazy("import column", "language"),
}
UNIT_FIELDS = {"company": UnitKind.COMPANY, "department": UnitKind.DEPARTMENT, "team": UnitKind.TEAM, "function": UnitKind.FUNCTION}


class ImportFileError(AppError):
    """The file as a whole cannot be read; nothing was imported."""

    code = "unreadable_file"


@dataclass
class RowError:
    row: int
    column: str
    reason: str
    email: str = ""  # as typed, for the results file

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason, "email": self.email}


@dataclass
class Checked:
    rows: list[dict] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    courses: list[Course] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- The template -------------------------------------------------------------

def template_workbook(*, courses: list[Course]) -> bytes:
    """An xlsx with the import columns and one column per course (its key):
    an ``x`` in it means enroll. Written in write-only mode."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Import")
    ws.append([*(str(FIELD_HEADINGS[f]) for f in FIELDS), *(c.key for c in courses)])
    ws.append(["someone@example.com", "First", "Last", "", "", "", "", "en", *("x" for _ in courses)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- Reading a file ------------------------------------------------------------

def limits() -> Limits:
    """What an import file may hold (read at call time: tests lower the caps)."""
    return Limits(max_rows=MAX_ROWS, max_columns=MAX_COLUMNS, max_entries=MAX_ZIP_ENTRIES)


def read_rows(*, name: str, data: bytes) -> list[list[str]]:
    """Rows of cells (strings) from an xlsx or CSV, header first, read in a
    child process with a time limit and a memory ceiling
    (``enrollment_site.lib.uploads``). Raises ImportFileError with a clear
    message for anything else. Call it from a job, never in a web request."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(_("The file is %(size)s bytes; the limit is %(limit)s.") % {
            "size": number_format(len(data), force_grouping=True), "limit": number_format(MAX_BYTES, force_grouping=True)})
    if not data:
        raise ImportFileError(_("The file is empty."))
    try:
        rows = read_upload(name=name, data=data, limits=limits())
    except UploadRefused as exc:
        raise ImportFileError(str(exc)) from None
    if not rows:
        raise ImportFileError(_("The file has no header row."))
    return rows


# --- Checking ------------------------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).lower()


@functools.cache
def _translated_headings() -> dict[str, str]:
    """The import fields by their headings in every language of the site (English ones excepted)."""
    found: dict[str, str] = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            found.update({_norm(str(heading)): name for name, heading in FIELD_HEADINGS.items()})
    return {heading: name for heading, name in found.items() if heading not in FIELDS}


def _norm_header(text: str) -> str:
    """A heading as the import field it names ("E-mail" or "Adresse e-mail" is "email"), else normalised."""
    norm = _norm(text)
    return norm if norm in FIELDS else _translated_headings().get(norm, norm)


def course_headings(header: list[str]) -> set[str]:
    """The headings of the header row that are not import fields: course keys
    (or mistakes, which ``validate_rows`` reports)."""
    return {h for h in header if _norm_header(h) not in FIELDS and h.strip()}


@dataclass
class Columns:
    """What each column of the file holds, by index."""

    fields: dict[int, str] = field(default_factory=dict)  # import fields ("email", "team"...)
    courses: dict[int, Course | None] = field(default_factory=dict)  # course columns (None: unknown course)
    units: dict[int, str] = field(default_factory=dict)  # unit fields that are applied here


def validate_rows(*, rows: list[list[str]], courses: dict[str, Course], units: dict[tuple[str, str], int] | None,
               course: Course | None = None) -> Checked:
    """Validate every row (pure: no queries). ``courses`` maps the lower-cased
    keys of the courses the header names (see ``course_headings``) to them;
    ``units`` maps (kind, lower-cased name) to unit ids, and is needed only
    where ``unit_columns_applied`` says so. ``course`` limits the import to
    that course (the course team's Membership tab), and ignores unit columns
    there. Raises ImportFileError for a header the import cannot use."""
    checked = Checked()
    columns = _check_header(rows[0], courses=courses, course=course, checked=checked)
    seen: dict[str, int] = {}
    for number, values in enumerate(rows[1:], start=2):
        if not any(values):
            continue
        record, row_errors = _check_row(number, values, header=rows[0], columns=columns, units=units or {}, seen=seen, course=course)
        if row_errors:
            for error in row_errors:
                error.email = record["email"]
            checked.errors.extend(row_errors)
        else:
            checked.rows.append(record)
    return checked


def unit_columns_applied(header: list[str], *, course: Course | None) -> bool:
    """Whether the file sets units, so that checking it needs the units by name."""
    return course is None and any(_norm_header(h) in UNIT_FIELDS for h in header)


def _check_header(header: list[str], *, courses: dict[str, Course], course: Course | None, checked: Checked) -> Columns:
    names = [_norm_header(h) for h in header]
    if "email" not in names:
        raise ImportFileError(_("Row 1: there is no “email” column. Start from the generated template."))
    columns = Columns()
    for index, (raw, norm) in enumerate(zip(header, names, strict=True)):
        if not norm:
            continue
        if norm in FIELDS:
            if norm in columns.fields.values():
                raise ImportFileError(_("Row 1: the column “%(column)s” appears twice.") % {"column": raw})
            columns.fields[index] = norm
            continue
        found = courses.get(raw.strip().lower())
        if course is not None and found is not None and found != course:
            found = None
            checked.errors.append(RowError(1, raw, _("unknown course: only %(course)s can be imported here") % {"course": course.key}))
        elif found is None:
            checked.errors.append(RowError(1, raw, _("unknown course")))
        columns.courses[index] = found
    checked.courses = sorted({c for c in columns.courses.values() if c is not None}, key=lambda c: c.pk)
    columns.units = {i: n for i, n in columns.fields.items() if n in UNIT_FIELDS}
    if course is not None and (columns.units or "language" in columns.fields.values()):
        checked.notes.append(_("Unit and language columns are ignored here; platform administrators set them on /organisation/import/."))
        columns.units = {}
    return columns


def _check_row(number: int, values: list[str], *, header: list[str], columns: Columns, units: dict[tuple[str, str], int],
               seen: dict[str, int], course: Course | None) -> tuple[dict, list[RowError]]:
    """One row as a record to import, and what is wrong with it (the record is kept only without errors)."""
    cell = {name: (values[i] if i < len(values) else "") for i, name in columns.fields.items()}
    errors: list[RowError] = []
    email_text = cell.get("email", "")
    key = normalize_email(email_text) if email_text else None
    if key is None:
        errors.append(RowError(number, "email", _("bad email '%(email)s'") % {"email": email_text} if email_text else _("email is missing")))
    elif key in seen:
        errors.append(RowError(number, "email", _("duplicate row: %(email)s is already on row %(row)s") % {"email": email_text, "row": seen[key]}))
    else:
        seen[key] = number
    record: dict[str, Any] = {"row": number, "email": email_text, "email_key": key, "course_ids": []}
    if course is None:
        for name in ("first name", "last name", "language"):
            if cell.get(name):
                record[name.replace(" ", "_")] = cell[name][:150]
        if len(cell.get("language", "")) > 10:
            errors.append(RowError(number, "language", _("a language is a short code such as en or nl")))
    for name in columns.units.values():
        text = cell[name]
        if not text:
            continue
        pk = units.get((UNIT_FIELDS[name], text.lower()))
        if pk is None:
            errors.append(RowError(number, name, _unknown_unit(name, text)))
        else:
            record[name] = pk
    for index, c in columns.courses.items():
        mark = values[index].strip().lower() if index < len(values) else ""
        if not mark:
            continue
        if mark != "x":
            errors.append(RowError(number, header[index], _("put an x to enroll, or leave empty (found '%(found)s')") % {"found": values[index]}))
        elif c is not None:
            record["course_ids"].append(c.pk)
    return record, errors


def _unknown_unit(column: str, name: str) -> str:
    """"unknown department “Sales”": one message per column, as the unit's word differs by language."""
    values = {"name": name}
    if column == "company":
        return _("unknown company '%(name)s'") % values
    if column == "department":
        return _("unknown department '%(name)s'") % values
    if column == "team":
        return _("unknown team '%(name)s'") % values
    return _("unknown function '%(name)s'") % values
