"""Reports by COPY (PostgreSQL): the same bytes as the row-by-row path on the
same data, for every report and every kind of awkward cell; rows streamed in
chunks with progress written while the COPY runs; the SQL helpers."""

import sys
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from enrollment_site.lib import csv_copy
from enrollment_site.lib.jobs import job_progress
from enrollment_site.lib.safe_csv import TRIGGERS
from enrollments.models import Allowance, Source
from reports import services
from reports.models import ReportTask
from reports.services import report_request, report_run

from ..codes.factories import CodeBatchFactory, EnrollmentCodeFactory, RedemptionFactory
from ..factories import AllowanceFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]

# Cells a spreadsheet or a CSV reader could trip on: every formula trigger,
# quotes, commas, line breaks alone and inside, non-ASCII, look-alike markers.
AWKWARD = [
    *(f"{trigger}1+2" for trigger in TRIGGERS),
    'say "hi"', "a,b", "line\nbreak", "crlf\r\ninside", "naïve Zoë 東京 🎓", "\u2028separator", " leading", "trailing ",
    "'quoted already", "\\.", "semi;colon", "x" * 140,
]  # fmt: skip


def produce_bytes(course, kind: str, *, by_copy: bool, monkeypatch) -> bytes:
    monkeypatch.setattr(services, "by_copy", lambda: by_copy)
    task, created = report_request(course=course, kind=kind, requester=None)
    assert created
    done = report_run(task_id=task.pk)
    assert done is not None and done.status == ReportTask.Status.SUCCEEDED
    with default_storage.open(done.file.name, "rb") as f:
        return f.read()


def assert_same_bytes(course, kind: str, monkeypatch) -> bytes:
    by_rows = produce_bytes(course, kind, by_copy=False, monkeypatch=monkeypatch)
    by_copy = produce_bytes(course, kind, by_copy=True, monkeypatch=monkeypatch)
    assert by_copy == by_rows
    return by_copy


@pytest.fixture
def far_time_zone(settings):
    # The site's time zone must change neither path: both write UTC.
    settings.TIME_ZONE = "Pacific/Kiritimati"


@pytest.mark.parametrize("name", ["Enrollment 101", "=cmd|' /C calc'!A0", 'Kurs, "Grundlagen"\n2026', "Cours élémentaire", ""])
def test_may_enroll_by_copy_is_the_row_by_row_file_byte_for_byte(monkeypatch, far_time_zone, name):
    course = CourseFactory(display_name=name)
    inviter = UserFactory(username="=inviter")
    Allowance.objects.bulk_create(
        [
            Allowance(course=course, email=f"{text}{i}" if i % 3 else text, email_key=f"key{i}", auto_enroll=bool(i % 2),
                      created_by=inviter if i % 2 else None,
                      created=datetime(2026, 3, 4, 23, 59, 59, 999_999, tzinfo=UTC) if i % 2 else datetime(2026, 1, 1, 0, 30, tzinfo=ZoneInfo("Pacific/Kiritimati")))
            for i, text in enumerate(["", *AWKWARD])
        ]
    )  # fmt: skip
    AllowanceFactory(course=course, email="used@example.org", used_at=datetime(2026, 1, 1, tzinfo=UTC))

    body = assert_same_bytes(course, "may_enroll", monkeypatch)

    # The data did exercise what it is meant to: guards, quoting, CRLF row ends, time zone, NULL.
    assert body.startswith(b"course,email,auto_enroll,allowed_by,allowed_at\r\n")
    assert b",'=1+2" in body and b"'=inviter" in body and b'"say ""hi""' in body and b'"line\nbreak' in body
    assert b"2026-03-04 23:59:59" in body and b"2025-12-31 10:30:00" in body
    assert body.count(b"\r\n") == len(AWKWARD) + 3  # the header and every row; the one CRLF inside a cell
    assert b"used@example.org" not in body


def test_enrolled_profiles_by_copy_is_the_row_by_row_file_byte_for_byte(monkeypatch, far_time_zone):
    course = CourseFactory(display_name="@course")
    names = [("", ""), ("  ", "\u3000"), ("\u00a0Ann", "Lee\u2003"), ("\t=x", "y"), ("Zoë", 'O\'Brien, "Jr"'), ("line\nbreak", "x")]
    names += [(text, "") for text in AWKWARD]
    sources = [*Source.values, "legacy"]  # a source no longer in the choices shows as it is
    for i, (first, last) in enumerate(names):
        user = UserFactory(username=f"{'=' if i % 2 else '-'}user{i}", email=f"{AWKWARD[i % len(AWKWARD)]}@x{i}.org", first_name=first, last_name=last)
        EnrollmentFactory(course=course, user=user, mode="=mode" if i == 3 else "verified", source=sources[i % len(sources)],
                          created=datetime(2026, 7, 8, 9, 10, 11, 123_456, tzinfo=UTC))  # fmt: skip
    EnrollmentFactory(course=course, is_active=False, user=UserFactory(username="gone"))
    # periods: both sides, an open end, an upcoming start, an ended one (fractions cut alike)
    now = datetime.now(UTC)
    EnrollmentFactory(course=course, user=UserFactory(username="period1"), access_from=now - timedelta(days=2, microseconds=7),
                      access_until=now + timedelta(days=9, microseconds=999_999))
    EnrollmentFactory(course=course, user=UserFactory(username="period2"), access_from=now + timedelta(days=5))
    EnrollmentFactory(course=course, user=UserFactory(username="period3"), access_until=now - timedelta(days=1))

    body = assert_same_bytes(course, "enrolled_profiles", monkeypatch)
    assert b",upcoming\r\n" in body and b",expired\r\n" in body and b",active\r\n" in body

    assert b"'@course" in body and b"'=x y" in body and b"'=mode" in body and b",Organisation unit,,,active\r\n" in body and b",legacy,,,active\r\n" in body
    assert b"gone" not in body


def test_codes_by_copy_is_the_row_by_row_file_byte_for_byte(monkeypatch, far_time_zone):
    course = CourseFactory(display_name="Codes, \"quoted\"")
    plain = CodeBatchFactory(courses=[course], prefix="", max_uses=3)
    prefixed = CodeBatchFactory(courses=[course], prefix="=X", max_uses=None)
    used = EnrollmentCodeFactory(batch=plain, code="-USED-1", max_uses=2, uses=2)
    RedemptionFactory(code=used)
    RedemptionFactory(code=used)
    EnrollmentCodeFactory(batch=plain, code="+EXPIRED", max_uses=None, expires_on=date(2019, 12, 31))
    EnrollmentCodeFactory(batch=prefixed, code="=X-ACTIVE", max_uses=None, expires_on=date(2030, 1, 1))
    EnrollmentCodeFactory(batch=prefixed, code="OFF", deactivated_at=datetime(2026, 1, 1, tzinfo=UTC))
    EnrollmentCodeFactory(courses=[CourseFactory()], code="ELSEWHERE")

    body = assert_same_bytes(course, "codes", monkeypatch)

    assert f"{prefixed.pk} (=X)".encode() in body and b"'=X-ACTIVE" in body and b"unlimited" in body and b"2019-12-31" in body
    assert {b"Used", b"Expired", b"Active", b"Deactivated"} <= set(body.replace(b"\r\n", b",").split(b","))
    assert b"ELSEWHERE" not in body


def test_an_empty_report_by_copy_is_its_header(course, monkeypatch):
    for kind in ReportTask.Kind.values:
        assert assert_same_bytes(course, kind, monkeypatch).count(b"\r\n") == 1


# --- streaming and progress ---------------------------------------------------------


def test_copy_csv_writes_every_chunk_as_it_comes_and_counts_rows(course, tmp_path, monkeypatch):
    AllowanceFactory.create_batch(5, course=course)
    monkeypatch.setattr(csv_copy, "CHUNK_BYTES", 1)  # every row is a chunk
    written = []

    with open(tmp_path / "out.csv", "wb") as out:
        # what the file holds at each chunk: the rows so far, written before the next is read
        rows = csv_copy.copy_csv(*services.REPORTS["may_enroll"].copy_select(course), out, on_chunk=lambda n: written.append((n, out.tell())))

    assert rows == 5
    assert [n for n, _ in written] == [1, 2, 3, 4, 5]
    sizes = [size for _, size in written]
    assert sizes == sorted(set(sizes))  # grows with every chunk
    assert (tmp_path / "out.csv").read_bytes().count(b"\r\n") == 5


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_while_the_copy_runs(monkeypatch):
    # The COPY holds the run's connection: progress goes through a thread with
    # its own. Each chunk here waits until its count is on the task row, as
    # another connection reads it, so the test sees progress mid-COPY.
    course = CourseFactory()
    AllowanceFactory.create_batch(4, course=course)
    monkeypatch.setattr(csv_copy, "CHUNK_BYTES", 1)
    seen: list[int] = []
    changed = threading.Condition()

    def recording_progress(run, **fields):
        job_progress(run, **fields)
        if "done" in fields and fields.get("total") is not None:
            with changed:
                seen.append(ReportTask.objects.values_list("done", flat=True).get(pk=run.pk))
                changed.notify_all()

    real_copy = services.copy_csv

    def copy_waiting_for_progress(sql, params, out, *, on_chunk):
        def chunk(rows):
            on_chunk(rows)
            with changed:
                assert changed.wait_for(lambda: seen and seen[-1] >= rows, timeout=30), f"no progress written for {rows} rows"

        return real_copy(sql, params, out, on_chunk=chunk)

    monkeypatch.setattr(services, "job_progress", recording_progress)
    monkeypatch.setattr(services, "copy_csv", copy_waiting_for_progress)
    task = ReportTask.objects.create(course=course, kind="may_enroll")  # not requested: eager mode would run it on commit

    report_run(task_id=task.pk)

    # 0 at the start, then each chunk's count, read back from the row by another connection
    assert seen == [0, 1, 2, 3, 4]
    task.refresh_from_db()
    assert (task.status, task.done, task.total) == ("succeeded", 4, 4)


@pytest.mark.django_db(transaction=True)
def test_a_copy_that_fails_midway_ends_failed_and_leaves_the_connection_usable(monkeypatch):
    # Autocommit, as in a worker: the COPY is cancelled and drained, and the
    # same connection then marks the task failed.
    course = CourseFactory()
    AllowanceFactory.create_batch(3, course=course)
    monkeypatch.setattr(csv_copy, "CHUNK_BYTES", 1)

    class FullDisk:
        def __init__(self, out):
            self.out, self.writes = out, 0

        def write(self, data):
            self.writes += 1
            if self.writes == 2:
                raise OSError("No space left on device")
            return self.out.write(data)

    real_copy = services.copy_csv
    monkeypatch.setattr(services, "copy_csv", lambda sql, params, out, **kw: real_copy(sql, params, FullDisk(out), **kw))
    task = ReportTask.objects.create(course=course, kind="may_enroll")

    with pytest.raises(OSError, match="No space left"):
        report_run(task_id=task.pk)

    task.refresh_from_db()
    assert (task.status, task.error, task.file.name) == ("failed", "No space left on device", "")
    assert list(csv_copy.default_connection.cursor().execute("SELECT 1")) == [(1,)]


# --- the SQL helpers ------------------------------------------------------------------


def test_whitespace_is_what_python_strips():
    assert csv_copy.WHITESPACE == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def test_an_unknown_cell_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown cell kind"):
        csv_copy.csv_select(Allowance.objects.values_list("id", "email"), ["money"])


def test_the_copy_keeps_the_query_order_without_sorting_again(course):
    sql, params = services.REPORTS["enrolled_profiles"].copy_select(course)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # the subquery's ORDER BY id serves the outer one: no sort on top of it
    assert plan.splitlines()[0].startswith("Subquery Scan")
