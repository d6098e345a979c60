"""Hostile upload files (issue 13): each is generated here, refused with a
message naming the limit, and costs a bounded job, never the web request.

The request only keeps the file and queues a job (asserted by making the
reader fail if the request calls it); the job reads the file in a child
process whose time and memory are capped."""

import base64
import io
import os
import random
import struct
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enrollment_site.lib import uploads
from enrollment_site.lib.upload_reader import Limits, TableError, read_table
from enrollment_site.lib.uploads import UploadRefused, read_upload
from enrollments.models import Allowance, BatchJob, Enrollment
from enrollments.services import batch_job_run
from organisations import import_file
from organisations.models import OrgImport, OrgJob
from organisations.services import org_job_run

pytestmark = pytest.mark.django_db

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Override PartName="/%s" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)


def workbook(rows) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Import")
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def shared_strings_bomb(strings: int = 9_000_000, *, part: str = "xl/sharedStrings.xml", padding: bool = True) -> bytes:
    """The workbook of the issue: a string table of millions of tiny strings
    (153 MB unpacked, a few hundred kB packed), plus 1 MB of random bytes
    stored uncompressed, so that the ratio summed over the archive looks harmless."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES % part.encode())
        zf.writestr(part, b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' + b"<si><t>a</t></si>" * strings + b"</sst>")
        if padding:
            zf.writestr("xl/media/image1.png", os.urandom(1024 * 1024), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def sheet_ratio_bomb() -> bytes:
    """One worksheet that packs 40 MB of identical rows into a few kB, padded
    with 1 MB of stored random bytes (the summed ratio stays under 150)."""
    data = workbook([["email"], ["someone@example.com"]])
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                content = content.replace(b"</sheetData>", b"<row><c><v>1</v></c></row>" * 1_600_000 + b"</sheetData>")
            dst.writestr(info.filename, content)
        dst.writestr("xl/media/image1.png", os.urandom(1024 * 1024), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def summed_ratio(data: bytes) -> float:
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    return sum(i.file_size for i in infos) / sum(i.compress_size for i in infos)


def upload_to_org_import(client, name, data, monkeypatch):
    """Upload as the page does, with a reader that fails the test if the request calls it."""
    monkeypatch.setattr(uploads.subprocess, "run", lambda *a, **k: pytest.fail("the request read the file"))
    response = client.post(reverse("org_import"), {"file": SimpleUploadedFile(name, data, "application/octet-stream")})
    monkeypatch.undo()
    assert response.status_code == 302
    org_import = OrgImport.objects.get()
    assert org_import.status == OrgImport.Status.UPLOADED and org_import.rows == [] and org_import.upload
    assert org_import.check_job.status == OrgJob.Status.QUEUED  # the check waits for a worker
    return response, org_import


# --- the file, through the page ------------------------------------------------

def test_the_shared_strings_bomb_with_stored_padding_is_refused_by_its_job(client_for, platform_admin, monkeypatch):
    data = shared_strings_bomb()
    assert len(data) < 2 * 1024 * 1024 and summed_ratio(data) < 150  # what the summed check let through
    client = client_for(platform_admin)
    response, org_import = upload_to_org_import(client, "people.xlsx", data, monkeypatch)
    job = org_job_run(job_id=org_import.check_job_id)
    assert job.status == OrgJob.Status.FAILED
    assert job.error.startswith("The part xl/sharedStrings.xml unpacks to ") and "the limit is 150 times" in job.error
    page = client.get(response["Location"]).content.decode()
    assert "people.xlsx: The part xl/sharedStrings.xml unpacks to" in page and "Nothing was imported." in page
    org_import.refresh_from_db()
    assert org_import.rows == [] and not org_import.upload  # nothing kept, the file deleted
    assert not Enrollment.objects.exists() and not Allowance.objects.exists()


# --- each check of the reader ---------------------------------------------------------------

def test_a_per_entry_ratio_bomb_is_refused_whatever_the_summed_ratio():
    data = sheet_ratio_bomb()
    assert summed_ratio(data) < 150
    with pytest.raises(TableError, match=r"The part xl/worksheets/sheet1.xml unpacks to [\d,]+ times its size \(a zip bomb\?\); the limit is 150 times"):
        read_table(name="b.xlsx", data=data, limits=Limits())


def test_more_shared_strings_than_cells_are_refused_even_under_another_name():
    limits = Limits(max_rows=10, max_columns=10)  # 110 cells: at most 110 shared strings
    renamed = shared_strings_bomb(200, part="xl/strings1.xml", padding=False)  # found through [Content_Types].xml, as openpyxl finds it
    with pytest.raises(TableError, match="more than 110 shared strings, more than 10 rows × 10 columns can need"):
        read_table(name="s.xlsx", data=renamed, limits=limits)
    # one per cell is fine
    read_table(name="ok.xlsx", data=workbook([["email"], ["a@example.com"]]), limits=limits)


def test_an_oversized_part_is_refused_through_the_page(client_for, platform_admin, monkeypatch):
    monkeypatch.setattr(import_file, "MAX_ROWS", 1000)  # 1,001 rows × 100 columns × 64 bytes: 6.1 MB a part
    data = workbook([["email"], ["a@example.com"]])
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("docProps/custom.xml", base64.b64encode(os.urandom(5 * 1024 * 1024)))  # 6.7 MB that barely compresses
    assert len(out.getvalue()) < import_file.MAX_BYTES
    client = client_for(platform_admin)
    response, org_import = upload_to_org_import(client, "big.xlsx", out.getvalue(), monkeypatch)
    monkeypatch.setattr(import_file, "MAX_ROWS", 1000)
    job = org_job_run(job_id=org_import.check_job_id)
    assert job.status == OrgJob.Status.FAILED
    assert job.error == "The part docProps/custom.xml unpacks to 6.7 MB, more than the 6.1 MB that 1,000 rows × 100 columns can need; it was not opened."


def nested() -> bytes:
    inner = workbook([["email"], ["a@example.com"]])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", inner)  # an archive under an innocent name
    return out.getvalue()


def overlapping() -> bytes:
    """Two names for one compressed stream: the second central directory
    record points at the first entry's local header."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/a.xml", b"<a/>" * 100)
        zf.writestr("xl/b.xml", b"<a/>" * 100)
    data = bytearray(out.getvalue())
    second = data.rindex(b"PK\x01\x02")  # the second central directory record
    struct.pack_into("<I", data, second + 42, 0)
    return bytes(data)


def encrypted() -> bytes:
    data = bytearray(workbook([["email"]]))
    first = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, first + 8, struct.unpack_from("<H", data, first + 8)[0] | 1)
    return bytes(data)


@pytest.mark.parametrize(("make", "message"), [
    (nested, "holds another archive (xl/worksheets/sheet1.xml); nested archives are not read"),
    (overlapping, "has overlapping parts (xl/a.xml, xl/b.xml)"),
    (encrypted, "is encrypted"),
])
def test_odd_archives_are_refused(make, message):
    with pytest.raises(TableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_table(name="odd.xlsx", data=make(), limits=Limits())


# --- the child's limits -----------------------------------------------------------------

# 50,000 rows of 100 cells: within the caps (10 MB, 50,000 rows, 100 columns), yet
# tens of MB to read.
HEAVY_CSV = (b"x," * 99 + b"x\n") * 50_000


def heavy_xlsx() -> bytes:
    """50,000 rows of 10 numbers: within every cap (3 MB, an ordinary
    compression ratio), yet seconds of CPU to read."""
    numbers = random.Random(13)
    rows = b"".join(b"<row>" + b"".join(b"<c><v>%d</v></c>" % numbers.randrange(10**6) for _ in range(10)) + b"</row>" for _ in range(49_999))
    data = workbook([["email"]])
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                content = content.replace(b"</sheetData>", rows + b"</sheetData>")
            dst.writestr(info.filename, content)
    return out.getvalue()


def test_a_file_that_needs_longer_than_the_time_limit_is_stopped(client_for, platform_admin, settings, monkeypatch):
    settings.UPLOAD_PARSE_TIME_LIMIT = 1  # seconds of CPU: the child gets SIGXCPU
    client = client_for(platform_admin)
    data = heavy_xlsx()
    assert len(data) < import_file.MAX_BYTES and summed_ratio(data) < 10
    response, org_import = upload_to_org_import(client, "heavy.xlsx", data, monkeypatch)
    job = org_job_run(job_id=org_import.check_job_id)
    assert job.status == OrgJob.Status.FAILED
    assert job.error == "The file took longer than 1 s to read; it was stopped. Split it into smaller files."
    assert "heavy.xlsx: The file took longer than 1 s to read" in client.get(response["Location"]).content.decode()


def test_a_file_still_reading_when_the_clock_runs_out_is_stopped(settings):
    settings.UPLOAD_PARSE_CLOCK_LIMIT = 1  # the CPU limit (30 s) is not reached first
    with pytest.raises(UploadRefused, match="^The file took longer than 1 s to read; it was stopped. Split it into smaller files, or try again later.$"):
        read_upload(name="heavy.xlsx", data=heavy_xlsx(), limits=Limits())


def test_the_memory_ceiling_is_enforced_in_the_child(settings):
    settings.UPLOAD_PARSE_MEMORY_LIMIT_MB = 40
    with pytest.raises(UploadRefused, match="^The file needs more than 40 MB to read; it was stopped. Split it into smaller files.$"):
        read_upload(name="heavy.csv", data=HEAVY_CSV, limits=Limits())
    # the same file reads under the default ceiling: the limit, not the file, stopped it
    settings.UPLOAD_PARSE_MEMORY_LIMIT_MB = 512
    assert len(read_upload(name="heavy.csv", data=HEAVY_CSV, limits=Limits())) == 50_000


def test_a_membership_upload_over_the_memory_ceiling_fails_its_batch_and_changes_nothing(client_for, course, course_staff, settings, monkeypatch):
    from enrollments.services import jobs

    settings.UPLOAD_PARSE_MEMORY_LIMIT_MB = 40
    monkeypatch.setattr(jobs, "read_upload", lambda **k: pytest.fail("the request read the file"))
    client = client_for(course_staff)
    data = b"email\n" + b"".join(b"person%d@example.com,%s\n" % (i, b"x," * 60) for i in range(60_000))
    response = client.post(reverse("batch_enrollment", args=[course.key]), {"file": SimpleUploadedFile("people.csv", data, "text/csv"), "action": "enroll"})
    assert response.status_code == 302
    job = BatchJob.objects.get()
    assert job.status == BatchJob.Status.QUEUED and job.total == 0 and not job.identifiers
    monkeypatch.undo()
    job = batch_job_run(job_id=job.pk)
    assert job.status == BatchJob.Status.FAILED
    assert job.error == "people.csv: The file needs more than 40 MB to read; it was stopped. Split it into smaller files. Nothing was changed."
    assert not Allowance.objects.exists() and not Enrollment.objects.exists()
