"""The organisation import: a template to fill in, a strict check of the
uploaded file (xlsx or UTF-8 CSV) with a preview of its effects, and the
import itself.

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
from collections import Counter
from dataclasses import dataclass, field

import openpyxl
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from courses.models import Course
from enrollment_site.lib.identifiers import normalize_email
from enrollment_site.lib.safe_csv import write_csv
from enrollments.models import Allowance, Enrollment, Source
from enrollments.services import Outcome, enrollment_batch_update

from .models import OrgImport, OrgJob, OrgUnit, UnitKind, UnitMembership
from .selectors import Target
from .texts import count_text

User = get_user_model()

# Refuse to run at all if openpyxl would parse XML without defusedxml.
assert openpyxl.DEFUSEDXML, "defusedxml must be installed: openpyxl would expand XML entities"  # noqa: S101

MAX_BYTES = getattr(settings, "ORGANISATION_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
MAX_ROWS = getattr(settings, "ORGANISATION_IMPORT_MAX_ROWS", 50_000)
MAX_COLUMNS = 100
MAX_ZIP_ENTRIES = 200
MAX_UNZIPPED = 200 * 1024 * 1024
MAX_RATIO = 150
CHUNK = 5000

FIELDS = ("email", "first name", "last name", "company", "department", "team", "function", "language")
UNIT_FIELDS = {"company": UnitKind.COMPANY, "department": UnitKind.DEPARTMENT, "team": UnitKind.TEAM, "function": UnitKind.FUNCTION}


class ImportFileError(Exception):
    """The file as a whole cannot be read; nothing was imported."""


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
    rows = []
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


def check_rows(*, rows: list[list[str]], course: Course | None = None) -> Checked:
    """Validate every row. ``course`` limits the import to that course (the
    course team's Membership tab), and ignores unit columns there. A constant
    number of queries: units, courses and nothing per row."""
    checked = Checked()
    header = [_norm_header(h) for h in rows[0]]
    if "email" not in header:
        raise ImportFileError("Row 1: there is no “email” column. Start from the generated template.")
    columns: dict[int, str] = {}
    course_cols: dict[int, Course | None] = {}
    keys = {h for i, h in enumerate(rows[0]) if _norm_header(h) not in FIELDS and h.strip()}
    known = {c.key.lower(): c for c in Course.objects.filter(key__in=keys)} if keys else {}
    for index, (raw, norm) in enumerate(zip(rows[0], header, strict=True)):
        if not norm:
            continue
        if norm in FIELDS:
            if norm in columns.values():
                raise ImportFileError(f"Row 1: the column “{raw}” appears twice.")
            columns[index] = norm
            continue
        found = known.get(raw.strip().lower())
        if course is not None and found is not None and found != course:
            found = None
            checked.errors.append(RowError(1, raw, f"unknown course: only {course.key} can be imported here"))
        elif found is None:
            checked.errors.append(RowError(1, raw, "unknown course"))
        course_cols[index] = found
    checked.courses = sorted({c for c in course_cols.values() if c is not None}, key=lambda c: c.pk)
    unit_cols = {i: n for i, n in columns.items() if n in UNIT_FIELDS}
    if course is not None and (unit_cols or "language" in columns.values()):
        checked.notes.append("Unit and language columns are ignored here; platform administrators set them on /organisation/import/.")
        unit_cols = {}
    units: dict[tuple[str, str], int] = {
        (kind, name): pk for kind, name, pk in OrgUnit.objects.annotate(key=Lower("name")).values_list("kind", "key", "pk")
    } if unit_cols else {}

    seen: dict[str, int] = {}
    for number, values in enumerate(rows[1:], start=2):
        if not any(values):
            continue
        cell = {name: (values[i] if i < len(values) else "") for i, name in columns.items()}
        row_errors: list[RowError] = []
        email_text = cell.get("email", "")
        key = normalize_email(email_text) if email_text else None
        if key is None:
            row_errors.append(RowError(number, "email", f"bad email {email_text!r}" if email_text else "email is missing"))
        elif key in seen:
            row_errors.append(RowError(number, "email", f"duplicate row: {email_text} is already on row {seen[key]}"))
        else:
            seen[key] = number
        record = {"row": number, "email": email_text, "email_key": key, "course_ids": []}
        if course is None:
            for name in ("first name", "last name", "language"):
                if cell.get(name):
                    record[name.replace(" ", "_")] = cell[name][:150]
            if len(cell.get("language", "")) > 10:
                row_errors.append(RowError(number, "language", "a language is a short code such as en or nl"))
        for name in unit_cols.values():
            text = cell[name]
            if not text:
                continue
            pk = units.get((UNIT_FIELDS[name], text.lower()))
            if pk is None:
                row_errors.append(RowError(number, name, f"unknown {name} {text!r}"))
            else:
                record[name] = pk
        for index, c in course_cols.items():
            mark = values[index].strip().lower() if index < len(values) else ""
            if not mark:
                continue
            if mark != "x":
                row_errors.append(RowError(number, rows[0][index], f"put an x to enroll, or leave empty (found {values[index]!r})"))
            elif c is not None:
                record["course_ids"].append(c.pk)
        if row_errors:
            for error in row_errors:
                error.email = email_text
            checked.errors.extend(row_errors)
        else:
            checked.rows.append(record)
    return checked


def preview(checked: Checked) -> dict:
    """Counts of what the import would do, per the rows that passed: a query or
    two per course, none per row."""
    keys = [r["email_key"] for r in checked.rows]
    users = {}
    for start in range(0, len(keys), CHUNK):
        users.update(dict(User.objects.annotate(k=Lower("email")).filter(k__in=keys[start:start + CHUNK]).values_list("k", "pk")))
    counts = Counter()
    counts["rows"] = len(checked.rows)
    counts["bad_rows"] = len({e.row for e in checked.errors if e.row > 1})
    counts["people_updated"] = sum(1 for r in checked.rows if r["email_key"] in users and any(k in r for k in (*UNIT_FIELDS, "language", "first_name", "last_name")))
    for c in checked.courses:
        wanted = [r["email_key"] for r in checked.rows if c.pk in r["course_ids"]]
        ids = [users[k] for k in wanted if k in users]
        states = dict(Enrollment.objects.filter(course=c, user_id__in=ids).values_list("user_id", "is_active")) if ids else {}
        for uid in ids:
            counts["left_alone" if states.get(uid) else "reactivated" if uid in states else "enrolled"] += 1
        unknown = [k for k in wanted if k not in users]
        allowed = set(Allowance.objects.filter(course=c, email_key__in=unknown, auto_enroll=True).values_list("email_key", flat=True)) if unknown else set()
        counts["allowances"] += len(unknown) - len(allowed)
        counts["left_alone"] += len(allowed)
    return dict(counts)


@transaction.atomic
def import_check(*, name: str, data: bytes, actor, course: Course | None = None, email_students: bool = False) -> OrgImport:
    """Read and check a file, and keep its valid rows for "Start import".
    Raises ImportFileError (nothing written) for a file that cannot be read."""
    checked = check_rows(rows=read_rows(name=name, data=data), course=course)
    result = preview(checked)
    result["notes"] = checked.notes
    result["courses"] = [c.key for c in checked.courses]
    return OrgImport.objects.create(
        requester=actor, course=course, filename=name[:255], rows=checked.rows,
        errors=[e.as_dict() for e in checked.errors], preview=result, email_students=email_students,
    )


@transaction.atomic
def import_start(*, org_import: OrgImport, actor) -> OrgJob:
    """Queue the checked import as a background job (once: a second click finds it started)."""
    from .services import org_job_create

    claimed = OrgImport.objects.filter(pk=org_import.pk, status=OrgImport.Status.CHECKED).update(status=OrgImport.Status.STARTED)
    if not claimed:
        org_import.refresh_from_db()
        return org_import.job
    # Progress counts rows: a row is done once its details and all its courses are.
    total = len(org_import.rows)
    job = org_job_create(kind=OrgJob.Kind.IMPORT, payload={"import_id": org_import.pk}, total=total, actor=actor)
    OrgImport.objects.filter(pk=org_import.pk).update(job=job)
    return job


# What one (row, course) enrollment did, in the results file, and the summary count it adds to.
ROW_OUTCOMES = {
    Outcome.ENROLLED: ("enrolled", "enrolled"),
    Outcome.REACTIVATED: ("enrolled again", "reactivated"),
    Outcome.ALREADY_ENROLLED: ("already enrolled, left alone", "left_alone"),
}
INVITED = ("invitation created: enrolls when they activate an account", "allowances")
ALREADY_INVITED = ("already invited, left alone", "left_alone")


def _row_outcome(result) -> tuple[str, str]:
    if result.outcome == Outcome.ALLOWED_AUTO:
        # enrollment_batch_update reports an existing invitation as "allowed" too; it changed nothing
        return ALREADY_INVITED if result.before.allowed and result.before.auto_enroll else INVITED
    return ROW_OUTCOMES.get(result.outcome, (result.outcome, result.outcome))


def import_run(*, org_import: OrgImport, actor, job: OrgJob | None = None) -> dict:
    """Apply a checked import: names, units and language of existing people
    (set-based: one statement per distinct value), the courses of units they
    join and the rules they come to match, then the enrollments (people
    without an account get an auto-enroll invitation). Audited as import.
    Progress counts rows; a CSV of what happened to every row of the file
    (the rows the check refused included) is saved as ``results_file``."""
    from .services import Plan, plan_enroll, plan_execute, rules_reconcile, rules_snapshot

    rows = org_import.rows
    course_scope = org_import.course_id is not None
    by_key: dict[str, int] = {}
    keys = [r["email_key"] for r in rows]
    for start in range(0, len(keys), CHUNK):
        by_key.update(dict(User.objects.annotate(k=Lower("email")).filter(k__in=keys[start:start + CHUNK], is_active=True).values_list("k", "pk")))
    summary: Counter = Counter()
    happened: dict[int, list[str]] = {r["row"]: [] for r in rows}
    if not course_scope:
        profile_keys = (*UNIT_FIELDS, "language", "first_name", "last_name")
        with transaction.atomic():
            touched = sorted({by_key[r["email_key"]] for r in rows if r["email_key"] in by_key and any(k in r for k in profile_keys)})
            before = rules_snapshot(user_ids=touched) if touched else {}
            joined: dict[int, set[int]] = {}
            for attr in ("company", "department"):
                # one UPDATE per distinct unit, for those who move: they join it
                # (and are enrolled in its courses below)
                groups: dict[int, list[int]] = {}
                for r in rows:
                    if attr in r and r["email_key"] in by_key:
                        groups.setdefault(r[attr], []).append(by_key[r["email_key"]])
                for value, ids in groups.items():
                    qs = User.objects.filter(pk__in=ids).exclude(**{f"{attr}_id": value})
                    joined.setdefault(value, set()).update(qs.values_list("pk", flat=True))
                    qs.update(**{f"{attr}_id": value})
            plain = ("language", "first_name", "last_name")
            changed = [
                User(pk=by_key[r["email_key"]], **{a: r[a] for a in plain if a in r})
                for r in rows if r["email_key"] in by_key and any(a in r for a in plain)
            ]
            for attrs in {tuple(a for a in plain if getattr(u, a)) for u in changed}:
                # bulk_update: a few CASE statements per 2,000 people, not one UPDATE each
                same = [u for u in changed if tuple(a for a in plain if getattr(u, a)) == attrs]
                if attrs:
                    User.objects.bulk_update(same, list(attrs), batch_size=2000)
            memberships = [(r[a], by_key[r["email_key"]]) for r in rows for a in ("team", "function") if a in r and r["email_key"] in by_key]
            if memberships:
                existing = set(UnitMembership.objects.filter(unit_id__in={u for u, _ in memberships}, user_id__in={p for _, p in memberships}).values_list("unit_id", "user_id"))
                new = [(u, p) for u, p in memberships if (u, p) not in existing]
                UnitMembership.objects.bulk_create([UnitMembership(unit_id=u, user_id=p, source="import") for u, p in new], ignore_conflicts=True)
                for u, p in new:
                    joined.setdefault(u, set()).add(p)
            for unit in OrgUnit.objects.filter(pk__in=list(joined)).order_by("pk"):
                target = Target(unit=unit)
                plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
                people = User.objects.filter(pk__in=sorted(joined[unit.pk]), is_active=True)
                plan.courses = [plan_enroll(course=c, users=people) for c in Course.objects.filter(pk__in=target.course_ids()).order_by("pk")]
                plan_execute(plan=plan, actor=actor, email_students=org_import.email_students)
            if touched:
                rules_reconcile(user_ids=touched, before=before, actor=actor, email_students=org_import.email_students)
            summary["people_updated"] = len(touched)
        for r in rows:
            if any(k in r for k in profile_keys):
                happened[r["row"]].append("details updated" if r["email_key"] in by_key else "no account yet: unit, language and name columns not applied")
    courses = list(Course.objects.filter(pk__in={c for r in rows for c in r["course_ids"]}).order_by("pk"))
    # Row chunks outside, courses inside: once a chunk is through, each of its
    # rows is done, which is what the progress bar counts.
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        for course in courses:
            marked = [r for r in chunk if course.pk in r["course_ids"]]
            if not marked:
                continue
            result = enrollment_batch_update(
                course=course, identifiers=[r["email"] for r in marked], action="enroll", auto_enroll=True,
                email_students=org_import.email_students, actor=actor, reason=f"Import {org_import.filename}", source=Source.IMPORT,
            )
            outcomes = {normalize_email(res.identifier) or res.identifier.lower(): _row_outcome(res) for res in result.results}
            for r in marked:
                text, counted = outcomes.get(r["email_key"], ("no outcome reported", "no outcome"))
                happened[r["row"]].append(f"{course.key}: {text}")
                summary[counted] += 1
        if job is not None:
            OrgJob.objects.filter(pk=job.pk).update(done=start + len(chunk), heartbeat_at=timezone.now())
    summary["finished"] = timezone.now().isoformat()
    _save_results(org_import, happened)
    return dict(summary)


def _save_results(org_import: OrgImport, happened: dict[int, list[str]]) -> None:
    """The per-row results file: row, email, what happened; the rows the check
    refused say why. Written through the safe CSV writer (no formulas)."""
    lines: dict[int, tuple[str, str]] = {r["row"]: (r["email"], "; ".join(happened[r["row"]]) or "nothing to change") for r in org_import.rows}
    refused: dict[int, list[dict]] = {}
    for error in org_import.errors:
        refused.setdefault(error["row"], []).append(error)
    for number, errors in refused.items():
        reasons = "; ".join(f"{e['column']}: {e['reason']}" for e in errors)
        lines[number] = ("", f"column ignored: {reasons}") if number == 1 else (errors[0].get("email", ""), f"not imported: {reasons}")
    text = write_csv([("row", "email", "what happened"), *((number, *lines[number]) for number in sorted(lines))])
    name = f"import_results_{timezone.now():%Y-%m-%d-%H%M}.csv"
    org_import.results_file.save(name, ContentFile(text.encode("utf-8")), save=False)
    OrgImport.objects.filter(pk=org_import.pk).update(results_file=org_import.results_file.name)
