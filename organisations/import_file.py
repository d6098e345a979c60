"""The organisation import's file: the template to fill in, reading an
uploaded xlsx or UTF-8 CSV safely, and checking its rows. No database access
here: ``organisations/services/imports.py`` looks up the courses and units the
file names, keeps the checked rows and runs the import.

Uploaded files are hostile until proven otherwise. Before openpyxl sees an
xlsx its zip directory is checked (entry count, declared uncompressed size,
compression ratio: a zip bomb is refused unread); openpyxl parses XML through
defusedxml (asserted below: no entity expansion, no external entities), in
read-only mode with cached values only, and reading stops at the row cap
(whatever size the sheet claims). CSV must be UTF-8 and free of NUL bytes.
Every error names its row; a file that fails the check writes nothing.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openpyxl
from django.conf import settings

from enrollment_site.lib.errors import AppError
from enrollment_site.lib.identifiers import normalize_email

from .models import UnitKind
from .texts import count_text

if TYPE_CHECKING:
    from courses.models import Course

# Refuse to run at all if openpyxl would parse XML without defusedxml.
assert openpyxl.DEFUSEDXML, "defusedxml must be installed: openpyxl would expand XML entities"  # noqa: S101

MAX_BYTES = getattr(settings, "ORGANISATION_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
MAX_ROWS = getattr(settings, "ORGANISATION_IMPORT_MAX_ROWS", 50_000)
MAX_COLUMNS = 100
MAX_ZIP_ENTRIES = 200
MAX_UNZIPPED = 200 * 1024 * 1024
MAX_RATIO = 150

FIELDS = ("email", "first name", "last name", "company", "department", "team", "function", "language")
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
    ws.append([*FIELDS, *(c.key for c in courses)])
    ws.append(["someone@example.com", "First", "Last", "", "", "", "", "en", *("x" for _ in courses)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- Reading a file ------------------------------------------------------------

def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFileError("This is not a well-formed xlsx file (it is not a valid zip archive).") from exc
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ImportFileError(f"This xlsx holds {len(infos)} parts, more than the {MAX_ZIP_ENTRIES} allowed.")
    declared = sum(i.file_size for i in infos)
    compressed = sum(i.compress_size for i in infos) or 1
    if declared > MAX_UNZIPPED or declared / compressed > MAX_RATIO and declared > 1024 * 1024:
        raise ImportFileError("This xlsx unpacks to far more than its size (a zip bomb?); it was not opened.")


def _xlsx_rows(data: bytes):
    _check_zip(data)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds; defusedxml's among them
        raise ImportFileError(f"This is not a well-formed xlsx file ({type(exc).__name__}).") from exc
    try:
        ws = wb.worksheets[0]
        # max_row caps what we read whatever dimension the sheet declares.
        for values in ws.iter_rows(max_row=MAX_ROWS + 2, max_col=MAX_COLUMNS + 1, values_only=True):
            cells = ["" if v is None else str(v).strip() for v in values]
            while cells and not cells[-1]:  # read-only rows are padded to max_col
                cells.pop()
            yield cells
    except ImportFileError:
        raise
    except Exception as exc:
        raise ImportFileError(f"This xlsx could not be read ({type(exc).__name__}: {exc}).") from exc
    finally:
        wb.close()


def _csv_rows(data: bytes):
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ImportFileError(f"Row {line}: the file contains a NUL byte; it is not a text CSV file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"Row {line}: the file is not UTF-8 text. Save it as “CSV UTF-8” and try again.") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for values in reader:
            yield [v.strip() for v in values]
    except csv.Error as exc:
        raise ImportFileError(f"Row {reader.line_num}: malformed CSV ({exc}).") from exc


def read_rows(*, name: str, data: bytes) -> list[list[str]]:
    """Rows of cells (strings) from an xlsx or CSV, header first. Raises
    ImportFileError with a clear message for anything else."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is {len(data):,} bytes; the limit is {MAX_BYTES:,}.")
    if not data:
        raise ImportFileError("The file is empty.")
    is_zip = data[:4] == b"PK\x03\x04"
    lower = name.lower()
    if lower.endswith((".xlsx", ".xlsm")) or is_zip:
        rows_iter = _xlsx_rows(data)
    elif lower.endswith((".csv", ".txt")):
        rows_iter = _csv_rows(data)
    else:
        raise ImportFileError("Upload an .xlsx workbook or a UTF-8 .csv file.")
    rows: list[list[str]] = []
    for values in rows_iter:
        if len(rows) > MAX_ROWS:
            raise ImportFileError(count_text(MAX_ROWS, "The file has more than %(count)s row; split it and import the parts.",
                                             "The file has more than %(count)s rows; split it and import the parts."))
        if len(values) > MAX_COLUMNS:
            raise ImportFileError(f"Row {len(rows) + 1}: more than {MAX_COLUMNS} columns.")
        rows.append(values)
    # read-only sheets may pad with empty rows up to their declared dimension
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        raise ImportFileError("The file has no header row.")
    return rows


# --- Checking ------------------------------------------------------------------

def _norm_header(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).lower()


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
        raise ImportFileError("Row 1: there is no “email” column. Start from the generated template.")
    columns = Columns()
    for index, (raw, norm) in enumerate(zip(header, names, strict=True)):
        if not norm:
            continue
        if norm in FIELDS:
            if norm in columns.fields.values():
                raise ImportFileError(f"Row 1: the column “{raw}” appears twice.")
            columns.fields[index] = norm
            continue
        found = courses.get(raw.strip().lower())
        if course is not None and found is not None and found != course:
            found = None
            checked.errors.append(RowError(1, raw, f"unknown course: only {course.key} can be imported here"))
        elif found is None:
            checked.errors.append(RowError(1, raw, "unknown course"))
        columns.courses[index] = found
    checked.courses = sorted({c for c in columns.courses.values() if c is not None}, key=lambda c: c.pk)
    columns.units = {i: n for i, n in columns.fields.items() if n in UNIT_FIELDS}
    if course is not None and (columns.units or "language" in columns.fields.values()):
        checked.notes.append("Unit and language columns are ignored here; platform administrators set them on /organisation/import/.")
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
        errors.append(RowError(number, "email", f"bad email {email_text!r}" if email_text else "email is missing"))
    elif key in seen:
        errors.append(RowError(number, "email", f"duplicate row: {email_text} is already on row {seen[key]}"))
    else:
        seen[key] = number
    record: dict[str, Any] = {"row": number, "email": email_text, "email_key": key, "course_ids": []}
    if course is None:
        for name in ("first name", "last name", "language"):
            if cell.get(name):
                record[name.replace(" ", "_")] = cell[name][:150]
        if len(cell.get("language", "")) > 10:
            errors.append(RowError(number, "language", "a language is a short code such as en or nl"))
    for name in columns.units.values():
        text = cell[name]
        if not text:
            continue
        pk = units.get((UNIT_FIELDS[name], text.lower()))
        if pk is None:
            errors.append(RowError(number, name, f"unknown {name} {text!r}"))
        else:
            record[name] = pk
    for index, c in columns.courses.items():
        mark = values[index].strip().lower() if index < len(values) else ""
        if not mark:
            continue
        if mark != "x":
            errors.append(RowError(number, header[index], f"put an x to enroll, or leave empty (found {values[index]!r})"))
        elif c is not None:
            record["course_ids"].append(c.pk)
    return record, errors
