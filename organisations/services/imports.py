"""The organisation import: checking an uploaded file (with a preview of its
effects, kept for "Start import"), starting it as a job, and running it.

The file itself (the template, safe reading, the row checks) is
``organisations/import_file.py``; this module adds what needs the database.
"""

from __future__ import annotations

import uuid
from collections import Counter

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile, File
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from accounts.types import Actor, recorded_user
from courses.models import Course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.errors import Conflict
from enrollment_site.lib.identifiers import normalize_email
from enrollment_site.lib.jobs import JobRun, job_chunk, job_chunks
from enrollment_site.lib.safe_csv import write_csv
from enrollments.models import Allowance, Enrollment, Outcome, Source
from enrollments.services import IdentifierResult, enrollment_accounts_enroll, enrollment_batch_update, enrollment_emails_invite

from .. import reasons
from ..import_file import UNIT_FIELDS, Checked, course_headings, read_rows, unit_columns_applied, validate_rows
from ..models import OrgImport, OrgJob, OrgJobChunk, OrgUnit, Placement, UnitMembership
from ..selectors.plans import Plan, plan_enroll
from ..selectors.targets import Target, rules_snapshot
from .enrollment_rules import rules_reconcile
from .jobs import org_job_create
from .people import place_in
from .plans import plan_execute

User = get_user_model()

# Rows per chunk: per query when looking people up, per progress step when enrolling.
CHUNK = 5000
# The columns that change a person rather than their enrollments.
PROFILE_KEYS = (*UNIT_FIELDS, "language", "first_name", "last_name")


# --- Checking a file ------------------------------------------------------------------

def check_rows(*, rows: list[list[str]], course: Course | None = None) -> Checked:
    """Validate every row (see ``validate_rows``). ``course`` limits the import
    to that course (the course team's Membership tab), and ignores unit columns
    there. A constant number of queries: units, courses and nothing per row."""
    keys = course_headings(rows[0])
    courses = {c.key.lower(): c for c in Course.objects.filter(key__in=keys)} if keys else {}
    units = None
    if unit_columns_applied(rows[0], course=course):
        units = {(kind, name): pk for kind, name, pk in OrgUnit.objects.annotate(key=Lower("name")).values_list("kind", "key", "pk")}
    return validate_rows(rows=rows, courses=courses, units=units, course=course)


def preview(checked: Checked) -> dict:
    """Counts of what the import would do, per the rows that passed: a query or
    two per course, none per row."""
    keys = [r["email_key"] for r in checked.rows]
    users = {}  # by email key; newest first so that the oldest of a flagged pair wins
    for start in range(0, len(keys), CHUNK):
        users.update(dict(User.objects.filter(email_key__in=keys[start:start + CHUNK]).order_by("-pk").values_list("email_key", "pk")))
    counts: Counter[str] = Counter()
    counts["rows"] = len(checked.rows)
    counts["bad_rows"] = len({e.row for e in checked.errors if e.row > 1})
    counts["people_updated"] = sum(1 for r in checked.rows if r["email_key"] in users and any(k in r for k in PROFILE_KEYS))
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
def import_upload(*, upload: File, actor: Actor, course: Course | None = None, email_students: bool = False) -> OrgImport:
    """Keep an uploaded file and queue its check as a job (``import_check_run``
    runs it, with progress): the request never reads the file, so a hostile
    one costs a bounded job, never a web worker. The file's size is the
    caller's to cap."""
    org_import = OrgImport.objects.create(
        requester=recorded_user(actor), course=course, filename=(upload.name or "upload")[:255], email_students=email_students,
        status=OrgImport.Status.UPLOADED,
    )
    org_import.upload.save(f"{org_import.public_id}.upload", upload, save=False)
    job = org_job_create(kind=OrgJob.Kind.CHECK, payload={"import_id": org_import.pk}, total=1, actor=actor)
    OrgImport.objects.filter(pk=org_import.pk).update(upload=org_import.upload.name, check_job=job)
    org_import.check_job = job
    return org_import


def import_check_run(*, org_import: OrgImport) -> dict:
    """Read an uploaded file (in a child process with a time limit and a
    memory ceiling), check it and keep its valid rows and preview for "Start
    import"; the stored file is deleted either way. Raises ImportFileError
    (the import stays unchecked, nothing written) for a file that cannot be
    read. Returns the job's summary (none: the preview says it all)."""
    try:
        with org_import.upload.open("rb") as stored:
            data = stored.read()
        checked = check_rows(rows=read_rows(name=org_import.filename, data=data), course=org_import.course)
        _keep_checked(org_import, checked)
    finally:
        if org_import.upload:
            org_import.upload.delete(save=False)
            OrgImport.objects.filter(pk=org_import.pk).update(upload="")
    return {}


@transaction.atomic
def import_check(*, name: str, data: bytes, actor: Actor, course: Course | None = None, email_students: bool = False) -> OrgImport:
    """Read and check a file now, and keep its valid rows for "Start import"
    (for jobs and scripts; pages go through ``import_upload``). Raises
    ImportFileError (nothing written) for a file that cannot be read."""
    checked = check_rows(rows=read_rows(name=name, data=data), course=course)
    org_import = OrgImport.objects.create(requester=recorded_user(actor), course=course, filename=name[:255], email_students=email_students)
    return _keep_checked(org_import, checked)


def _keep_checked(org_import: OrgImport, checked: Checked) -> OrgImport:
    result = preview(checked)
    result["notes"] = checked.notes
    result["courses"] = [c.key for c in checked.courses]
    org_import.rows, org_import.errors, org_import.preview = checked.rows, [e.as_dict() for e in checked.errors], result
    org_import.status = OrgImport.Status.CHECKED
    org_import.save(update_fields=["rows", "errors", "preview", "status"])
    return org_import


@transaction.atomic
def import_start(*, org_import: OrgImport, actor: Actor) -> OrgJob:
    """Queue the checked import as a background job (once: a second click finds it started)."""
    claimed = OrgImport.objects.filter(pk=org_import.pk, status=OrgImport.Status.CHECKED).update(status=OrgImport.Status.STARTED)
    if not claimed:
        org_import.refresh_from_db()
        if org_import.job is None:  # its check has not finished (or refused the file)
            raise Conflict(_("This file has not passed its check yet; start the import once the check shows its preview."))
        return org_import.job  # started by an earlier click
    # Progress counts rows: a row is done once its details and all its courses are.
    total = len(org_import.rows)
    job = org_job_create(kind=OrgJob.Kind.IMPORT, payload={"import_id": org_import.pk}, total=total, actor=actor)
    OrgImport.objects.filter(pk=org_import.pk).update(job=job)
    return job


# --- Running it ------------------------------------------------------------------------

# What one (row, course) enrollment did, in the results file (in the language of
# whoever started the import: the job runs in it), and the summary count it adds to.
INVITED = (gettext_lazy("invitation created: enrolls when they activate an account"), "allowances")
ALREADY_INVITED = (gettext_lazy("already invited, left alone"), "left_alone")
ROW_OUTCOMES = {
    Outcome.ENROLLED: (pgettext_lazy("import row", "enrolled"), "enrolled"),
    Outcome.REACTIVATED: (gettext_lazy("enrolled again"), "reactivated"),
    Outcome.ALREADY_ENROLLED: (gettext_lazy("already enrolled, left alone"), "left_alone"),
    Outcome.ALLOWED_AUTO: INVITED,
    Outcome.ALREADY_ALLOWED: ALREADY_INVITED,
}
NAME_KEYS = ("language", "first_name", "last_name")


def import_run(*, org_import: OrgImport, actor: Actor, run: JobRun | None = None, operation_id: uuid.UUID | None = None) -> dict:
    """Apply a checked import: names, units and language of existing people
    (set-based: one statement per distinct value), the courses of units they
    join and the rules they come to match, then the enrollments (people
    without an account get an auto-enroll invitation). Audited as import.
    Progress counts rows; a CSV of what happened to every row of the file
    (the rows the check refused included) is saved as ``results_file``.

    With ``run`` (the import's job), the people's details commit as one step
    and the enrollments chunk by chunk, each with the job's position, counts
    and what happened to the chunk's rows: a run that takes the job over
    skips what was committed and goes on from there. Everything is audited
    under ``operation_id`` (the job's, kept across takeovers; a new one if not
    given): one undo takes the whole import back."""
    operation_id = operation_id or uuid.uuid4()
    rows = org_import.rows
    accounts = _accounts_by_email(rows)
    summary: Counter = run.counts if run is not None else Counter()
    happened: dict[int, list[str]] = {r["row"]: [] for r in rows}
    if org_import.course_id is None:  # a course team's import changes enrollments only
        if "people_updated" not in summary:  # not committed by a run before this one
            with job_chunk(run) as record:
                summary["people_updated"] = _apply_profiles(rows, accounts, actor=actor, email_students=org_import.email_students,
                                                            operation_id=operation_id)
                if run is not None:
                    record.record(advance=0, summary=dict(summary))
        for r in rows:
            if any(k in r for k in PROFILE_KEYS):
                happened[r["row"]].append(_("details updated") if r["email_key"] in accounts
                                          else _("no account yet: unit, language and name columns not applied"))
    _enroll_rows(org_import, accounts, actor=actor, run=run, happened=happened, summary=summary, operation_id=operation_id)
    _save_results(org_import, happened)
    return {**summary, "finished": timezone.now().isoformat()}


def _accounts_by_email(rows: list[dict]) -> dict[str, int]:
    """Active accounts' ids by email key (``email_key``), for the rows' emails: a
    query per CHUNK rows. Newest first, so that of two accounts flagged as sharing
    a key the older one is kept, as ``users_by_identifier`` picks it."""
    keys = [r["email_key"] for r in rows]
    accounts: dict[str, int] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        accounts.update(dict(User.objects.filter(email_key__any_of=chunk, is_active=True).order_by("-pk").values_list("email_key", "pk")))
    return accounts


@transaction.atomic
def _apply_profiles(rows: list[dict], accounts: dict[str, int], *, actor: Actor, email_students: bool, operation_id: uuid.UUID) -> int:
    """Write the rows' units, names and language to the existing accounts,
    enroll people in the courses of the units they join and reconcile the
    rules for everyone touched. Returns how many people were touched."""
    touched = sorted({accounts[r["email_key"]] for r in rows if r["email_key"] in accounts and any(k in r for k in PROFILE_KEYS)})
    before = rules_snapshot(user_ids=touched) if touched else {}
    joined = _move_to_units(rows, accounts)
    _update_names(rows, accounts)
    for unit_id, people in _add_memberships(rows, accounts).items():
        joined.setdefault(unit_id, set()).update(people)
    for unit in OrgUnit.objects.filter(pk__in=list(joined)).order_by("pk"):
        target = Target(unit=unit)
        plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
        members = User.objects.filter(pk__in=sorted(joined[unit.pk]), is_active=True)
        plan.courses = [plan_enroll(course=c, users=members) for c in Course.objects.filter(pk__in=target.course_ids()).order_by("pk")]
        plan_execute(plan=plan, actor=actor, email_students=email_students, operation_id=operation_id)
    if touched:
        rules_reconcile(user_ids=touched, before=before, actor=actor, email_students=email_students, operation_id=operation_id)
    return len(touched)


def _move_to_units(rows: list[dict], accounts: dict[str, int]) -> dict[int, set[int]]:
    """Set company and department (the people's Placement): one upsert per
    distinct unit, for those who move. Returns who joined which unit (they are
    enrolled in its courses)."""
    joined: dict[int, set[int]] = {}
    for attr in ("company", "department"):
        movers: dict[int, list[int]] = {}
        for r in rows:
            if attr in r and r["email_key"] in accounts:
                movers.setdefault(r[attr], []).append(accounts[r["email_key"]])
        for value, ids in movers.items():
            staying = set(Placement.objects.filter(user_id__in=ids, **{f"{attr}_id": value}).values_list("user_id", flat=True))
            moving = sorted(set(ids) - staying)
            joined.setdefault(value, set()).update(moving)
            if moving:
                place_in(kind=attr, unit_id=value, user_ids=moving)
    return joined


def _update_names(rows: list[dict], accounts: dict[str, int]) -> None:
    """Set first and last names and language where the file gives them."""
    changed = [
        User(pk=accounts[r["email_key"]], **{a: r[a] for a in NAME_KEYS if a in r})
        for r in rows if r["email_key"] in accounts and any(a in r for a in NAME_KEYS)
    ]
    for attrs in {tuple(a for a in NAME_KEYS if getattr(u, a)) for u in changed}:
        # bulk_update: a few CASE statements per 2,000 people, not one UPDATE each
        same = [u for u in changed if tuple(a for a in NAME_KEYS if getattr(u, a)) == attrs]
        if attrs:
            User.objects.bulk_update(same, list(attrs), batch_size=2000)


def _add_memberships(rows: list[dict], accounts: dict[str, int]) -> dict[int, set[int]]:
    """Add people to the teams and functions the file names. Returns who joined which unit."""
    memberships = [(r[a], accounts[r["email_key"]]) for r in rows for a in ("team", "function") if a in r and r["email_key"] in accounts]
    joined: dict[int, set[int]] = {}
    if not memberships:
        return joined
    existing = set(
        UnitMembership.objects.filter(unit_id__in={u for u, _ in memberships}, user_id__in={p for _, p in memberships})
        .values_list("unit_id", "user_id")
    )
    new = [(u, p) for u, p in memberships if (u, p) not in existing]
    UnitMembership.objects.bulk_create([UnitMembership(unit_id=u, user_id=p, source="import") for u, p in new], ignore_conflicts=True)
    for u, p in new:
        joined.setdefault(u, set()).add(p)
    return joined


def _enroll_rows(org_import: OrgImport, accounts: dict[str, int], *, actor: Actor, run: JobRun | None, happened: dict[int, list[str]],
                 summary: Counter, operation_id: uuid.UUID) -> None:
    """Enroll every row in the courses it marks, noting what happened per row
    and counting it in ``summary``. Row chunks outside, courses inside: once a
    chunk is through, each of its rows is done, which is what the progress bar
    counts. With ``run``, from its position on, each chunk committing with it."""
    rows = org_import.rows
    courses = list(Course.objects.filter(pk__in={c for r in rows for c in r["course_ids"]}).order_by("pk"))
    for start in range(run.position if run is not None else 0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        with job_chunk(run, store=OrgJobChunk) as record:
            notes: dict[int, list[str]] = {}
            for course in courses:
                marked = [r for r in chunk if course.pk in r["course_ids"]]
                if not marked:
                    continue
                outcomes = _enroll_marked(org_import, course, marked, accounts, actor=actor, operation_id=operation_id)
                for r in marked:
                    outcome = outcomes.get(r["email_key"])
                    text, counted = outcome if outcome is not None else (_("no outcome reported"), "no outcome")
                    notes.setdefault(r["row"], []).append(f"{course.key}: {text}")
                    summary[counted] += 1
            if run is not None:
                record.record(advance=len(chunk), data=notes, summary=dict(summary))
            else:
                _note(happened, notes)
    if run is not None:
        for notes in job_chunks(OrgJobChunk, run):
            _note(happened, {int(row): texts for row, texts in notes.items()})


def _enroll_marked(org_import: OrgImport, course: Course, marked: list[dict], accounts: dict[str, int], *, actor: Actor,
                   operation_id: uuid.UUID) -> dict[str, tuple[str, str]]:
    """Enroll the rows ``marked`` for ``course`` (people without an account
    get an auto-enroll invitation); what happened by row email key. On
    PostgreSQL the accounts are known already (``accounts``, by email key):
    one statement enrolls them and one invites the other addresses, each
    with its audit entries and messages, whatever the number of rows.
    Elsewhere through ``enrollment_batch_update``, which writes the same rows."""
    email_students, reason = org_import.email_students, reasons.IMPORT % {"filename": org_import.filename}
    if connection.vendor != "postgresql":
        result = enrollment_batch_update(
            course=course, identifiers=[r["email"] for r in marked], action="enroll", auto_enroll=True, actor=actor,
            email_students=email_students, reason=reason, source=Source.IMPORT, operation_id=operation_id,
        )
        return {normalize_email(res.identifier) or res.identifier.lower(): _row_outcome(res) for res in result.results}
    known = [r for r in marked if r["email_key"] in accounts]
    unknown = [r for r in marked if r["email_key"] not in accounts]
    enrolled = enrollment_accounts_enroll(
        course=course, user_ids=[accounts[r["email_key"]] for r in known], identifiers=[r["email"] for r in known], actor=actor,
        email_students=email_students, reason=reason, source=Source.IMPORT, operation_id=operation_id,
    ) if known else {}
    invited = enrollment_emails_invite(
        course=course, emails=[r["email"] for r in unknown], keys=[r["email_key"] for r in unknown], auto_enroll=True, actor=actor,
        email_students=email_students, reason=reason, source=Source.IMPORT, operation_id=operation_id,
    ) if unknown else {}
    chosen: dict[str, Outcome] = {}
    for r in known:
        changed = enrolled.get(accounts[r["email_key"]])
        chosen[r["email_key"]] = Outcome.ALREADY_ENROLLED if changed is None else Outcome.ENROLLED if changed else Outcome.REACTIVATED
    for r in unknown:
        chosen[r["email_key"]] = Outcome.ALLOWED_AUTO if r["email_key"] in invited else Outcome.ALREADY_ALLOWED
    # The text in the language the import runs in (its results file is read by whoever started it),
    # translated once per outcome rather than once per row.
    said = {outcome: (str(text), counted) for outcome, (text, counted) in ROW_OUTCOMES.items()}
    return {key: said[outcome] for key, outcome in chosen.items()}


def _note(happened: dict[int, list[str]], notes: dict[int, list[str]]) -> None:
    for row, texts in notes.items():
        happened[row].extend(texts)


def _row_outcome(result: IdentifierResult) -> tuple[str, str]:
    # An outcome not expected from an auto-enroll by email is said by its label and counted by its key.
    text, counted = ROW_OUTCOMES.get(result.outcome, (result.outcome.label, result.outcome))
    return str(text), counted


def _save_results(org_import: OrgImport, happened: dict[int, list[str]]) -> None:
    """The per-row results file: row, email, what happened; the rows the check
    refused say why. Written through the safe CSV writer (no formulas)."""
    lines: dict[int, tuple[str, str]] = {r["row"]: (r["email"], "; ".join(happened[r["row"]]) or _("nothing to change")) for r in org_import.rows}
    refused: dict[int, list[dict]] = {}
    for error in org_import.errors:
        refused.setdefault(error["row"], []).append(error)
    for number, errors in refused.items():
        reasons = "; ".join(f"{e['column']}: {e['reason']}" for e in errors)
        if number == 1:
            lines[number] = ("", _("column ignored: %(reasons)s") % {"reasons": reasons})
        else:
            lines[number] = (errors[0].get("email", ""), _("not imported: %(reasons)s") % {"reasons": reasons})
    header = (pgettext("results column", "row"), pgettext("results column", "email"), pgettext("results column", "what happened"))
    text = write_csv([header, *((number, *lines[number]) for number in sorted(lines))])
    name = f"import_results_{timezone.now():%Y-%m-%d-%H%M}.csv"
    org_import.results_file.save(name, ContentFile(text.encode("utf-8")), save=False)
    OrgImport.objects.filter(pk=org_import.pk).update(results_file=org_import.results_file.name)
