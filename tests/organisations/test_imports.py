import io
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Source
from organisations import import_file
from organisations.import_file import ImportFileError, read_rows
from organisations.models import OrgImport, OrgJob, UnitKind, UnitMembership
from organisations.selectors import user_placement
from organisations.services import import_check, import_run, imports
from organisations.tasks import run_org_job

from ..factories import EnrollmentFactory, UserFactory
from .factories import OrgUnitFactory

pytestmark = pytest.mark.django_db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx(rows) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Import")
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def rewrite(data: bytes, part: str, transform) -> bytes:
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            dst.writestr(info.filename, transform(content) if info.filename == part else content)
    return out.getvalue()


HEADER = ["email", "first name", "last name", "company", "department", "team", "function", "language"]


def upload(client, url, name, data, capture, content_type=XLSX):
    """Upload a file as the page does: the request keeps it and queues its
    check, which runs (eagerly, once the request commits) as a job. Returns
    the page the upload redirects to: the check's preview, or why it refused the file."""
    with capture(execute=True):
        response = client.post(url, {"file": SimpleUploadedFile(name, data, content_type)})
    assert response.status_code == 302 and "?import=" in response["Location"]
    return client.get(response["Location"])


def test_template_round_trips(client_for, platform_admin, course, other_course):
    response = client_for(platform_admin).get(reverse("org_import_template"), {"courses": [course.pk, other_course.pk]})
    assert response.status_code == 200 and response["Content-Type"] == XLSX
    rows = read_rows(name="template.xlsx", data=response.content)
    assert rows[0][:8] == HEADER and sorted(rows[0][8:]) == sorted([course.key, other_course.key])
    checked = imports.check_rows(rows=rows)
    assert not checked.errors and checked.courses == [course, other_course]
    assert imports.preview(checked)["allowances"] == 2


def test_mixed_file_gives_preview_and_row_errors(platform_admin, course):
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")
    team = OrgUnitFactory(kind=UnitKind.TEAM, name="Red")
    known = UserFactory(email="known@example.com", first_name="Kim")
    again = UserFactory(email="again@example.com")
    EnrollmentFactory(user=again, course=course, is_active=False)
    already = UserFactory(email="already@example.com")
    EnrollmentFactory(user=already, course=course)
    data = xlsx([
        [*HEADER, course.key, "course-v1:No+Such+Course"],
        ["KNOWN@example.com", "Kimberly", "", "", "sales", "red", "", "nl", "x", ""],  # 2: good, existing user
        ["new@example.com", "", "", "", "", "", "", "", "X", ""],  # 3: good, allowance
        ["not-an-email", "", "", "", "", "", "", "", "x", ""],  # 4: bad email
        ["other@example.com", "", "", "", "Nowhere", "", "", "", "x", ""],  # 5: unknown department
        ["known@example.com", "", "", "", "", "", "", "", "x", ""],  # 6: duplicate
        ["again@example.com", "", "", "", "", "", "", "", "x", ""],  # 7: reactivated
        ["already@example.com", "", "", "", "", "", "", "", "x", ""],  # 8: left alone
        ["odd@example.com", "", "", "", "", "", "", "", "yes", ""],  # 9: not an x
    ])
    checked = import_check(name="people.xlsx", data=data, actor=platform_admin)
    errors = {(e["row"], e["column"]): e["reason"] for e in checked.errors}
    assert errors[(1, "course-v1:No+Such+Course")] == "unknown course"
    assert "bad email" in errors[(4, "email")]
    assert errors[(5, "department")] == "unknown department 'Nowhere'"
    assert "duplicate row" in errors[(6, "email")] and "row 2" in errors[(6, "email")]
    assert (9, course.key) in errors
    assert len(errors) == 5
    p = checked.preview
    assert (p["rows"], p["bad_rows"], p["allowances"], p["enrolled"], p["reactivated"], p["left_alone"]) == (4, 4, 1, 1, 1, 1)
    assert not Allowance.objects.exists() and Enrollment.objects.filter(is_active=True).count() == 1

    summary = import_run(org_import=checked, actor=platform_admin)
    assert summary["enrolled"] == 1 and summary["reactivated"] == 1 and summary["allowances"] == 1
    known.refresh_from_db()
    assert user_placement(user=known).department == dept and known.language == "nl" and known.first_name == "Kimberly"
    assert UnitMembership.objects.filter(unit=team, user=known).exists()
    assert Allowance.objects.get(course=course).email == "new@example.com"
    assert EnrollmentAudit.objects.filter(source=Source.IMPORT, course=course, user=known).exists()


def test_import_page_check_then_start_with_progress(client_for, platform_admin, course, django_capture_on_commit_callbacks):
    UserFactory(email="a@example.com")
    data = xlsx([[*HEADER, course.key], ["a@example.com", "", "", "", "", "", "", "", "x"], ["bad@", "", "", "", "", "", "", "", "x"]])
    client = client_for(platform_admin)
    response = client.post(reverse("org_import"), {"file": SimpleUploadedFile("p.xlsx", data, XLSX)})
    # The request keeps the file and queues its check; the page shows its progress.
    assert response.status_code == 302
    org_import = OrgImport.objects.get()
    assert org_import.status == OrgImport.Status.UPLOADED and org_import.rows == [] and org_import.upload
    assert org_import.check_job.status == OrgJob.Status.QUEUED
    page = client.get(response["Location"]).content.decode()
    assert "Checking p.xlsx in the background" in page and 'aria-label="Check of the file"' in page
    assert f'hx-get="{reverse("org_job_status", args=[org_import.check_job.public_id])}"' in page
    run_org_job.delay(org_import.check_job_id)
    response = client.get(response["Location"])
    assert response.status_code == 200
    assert b'id="n-enrolled">1<' in response.content and b"bad email" in response.content
    assert not Enrollment.objects.exists()
    org_import.refresh_from_db()
    assert org_import.status == OrgImport.Status.CHECKED and not org_import.upload  # the rows are kept, the file is not
    # The polled fragment answers with the preview and stops the polling.
    fragment = client.get(reverse("org_job_status", args=[org_import.check_job.public_id]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286 and b'id="start-import"' in fragment.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("org_import_start", args=[org_import.public_id]))
    assert response.status_code == 302
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 1
    job = OrgJob.objects.get(kind=OrgJob.Kind.IMPORT)
    assert job.status == OrgJob.Status.SUCCEEDED and job.done == job.total
    page = client.get(response["Location"])
    assert b"Succeeded" in page.content


def external_entity_xlsx() -> bytes:
    doctype = b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'

    def inject(content):
        body = content.split(b"?>", 1)[1] if content.startswith(b"<?xml") else content
        return doctype + body.replace(b"someone@example.com", b"&xxe;")

    data = xlsx([["email"], ["someone@example.com"]])
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    part = next(n for n in names if n.startswith("xl/worksheets/sheet"))
    return rewrite(data, part, inject)


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("entity.xlsx", external_entity_xlsx, "not a well-formed xlsx"),
        ("bomb.xlsx", zip_bomb, "zip bomb"),
        ("binary.csv", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "NUL byte"),
        ("latin1.csv", lambda: "email\ncafé@example.com\n".encode("latin-1"), "not UTF-8"),
        ("quote.csv", lambda: b'email\n"unterminated@example.com\n', "malformed CSV"),
        ("renamed.xlsx", lambda: b"email\nsomeone@example.com\n", "not a well-formed xlsx"),
        ("people.pdf", lambda: b"%PDF-1.4", "Upload an .xlsx"),
    ],
)
def test_hostile_files_refused_and_nothing_changed(client_for, platform_admin, name, make, message, django_capture_on_commit_callbacks):
    with pytest.raises(ImportFileError, match=message):
        read_rows(name=name, data=make())
    page = upload(client_for(platform_admin), reverse("org_import"), name, make(), django_capture_on_commit_callbacks, "application/octet-stream")
    assert page.status_code == 200
    error = page.content.decode().split('id="import-error"', 1)[1].split("</div>", 1)[0]
    assert message in error and "Nothing was imported" in error and "autofocus" in error
    org_import = OrgImport.objects.get()
    assert org_import.status == OrgImport.Status.UPLOADED and org_import.rows == [] and not org_import.upload
    assert org_import.check_job.status == OrgJob.Status.FAILED and message in org_import.check_job.error
    assert not Enrollment.objects.exists() and not Allowance.objects.exists()


def test_too_many_rows_and_oversized(client_for, platform_admin, monkeypatch, course):
    monkeypatch.setattr(import_file, "MAX_ROWS", 5)
    data = xlsx([["email", course.key]] + [[f"p{i}@example.com", "x"] for i in range(10)])
    with pytest.raises(ImportFileError, match="more than 5 rows"):
        read_rows(name="big.xlsx", data=data)
    monkeypatch.setattr(import_file, "MAX_ROWS", 1)
    with pytest.raises(ImportFileError, match="more than 1 row; split it"):
        read_rows(name="big.xlsx", data=data)
    monkeypatch.setattr(import_file, "MAX_BYTES", 100)
    response = client_for(platform_admin).post(reverse("org_import"), {"file": SimpleUploadedFile("big.xlsx", data)})
    assert response.status_code == 400 and b"the limit is 100" in response.content
    assert not OrgImport.objects.exists() and not Allowance.objects.exists()


def test_declared_dimension_does_not_matter():
    data = xlsx([["email"], ["a@example.com"], ["b@example.com"]])
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    part = next(n for n in names if n.startswith("xl/worksheets/sheet"))

    def claim(content):
        import re

        return re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', content)

    assert len(read_rows(name="d.xlsx", data=rewrite(data, part, claim))) == 3


def test_csv_import_works(platform_admin, course):
    data = f"\ufeffemail,{course.key}\nz@example.com,x\n".encode()
    checked = import_check(name="p.csv", data=data, actor=platform_admin)
    assert checked.preview["allowances"] == 1 and not checked.errors


def test_course_team_imports_into_own_course_only(client_for, course_staff, course, other_course, django_capture_on_commit_callbacks):
    client = client_for(course_staff)
    assert client.get(reverse("course_import", args=[other_course.key])).status_code == 403
    assert client.get(reverse("course_import_template", args=[other_course.key])).status_code == 403
    assert client.get(reverse("org_import")).status_code == 403
    template = client.get(reverse("course_import_template", args=[course.key]))
    assert read_rows(name="t.xlsx", data=template.content)[0] == [*HEADER, course.key]
    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")
    user = UserFactory(email="u@example.com")
    data = xlsx([[*HEADER, course.key, other_course.key], ["u@example.com", "", "", "", "Sales", "", "", "", "x", "x"]])
    response = upload(client, reverse("course_import", args=[course.key]), "p.xlsx", data, django_capture_on_commit_callbacks)
    assert b"only " + course.key.encode() + b" can be imported here" in response.content
    org_import = OrgImport.objects.get()
    assert org_import.course == course
    # another course's import cannot be started from here
    assert client.post(reverse("course_import_start", args=[other_course.key, org_import.public_id])).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("course_import_start", args=[course.key, org_import.public_id]))
    assert Enrollment.objects.filter(user=user, course=course, is_active=True).exists()
    assert not Enrollment.objects.filter(course=other_course).exists()
    user.refresh_from_db()
    assert user_placement(user=user).department is None and dept.department_placements.count() == 0


def test_import_moves_people_into_units_and_notifies(platform_admin, course, other_course):
    from enrollments.models import Notification
    from organisations.selectors import Target
    from organisations.services import assignment_link

    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Ops")
    assignment_link(target=Target(unit=dept), course=other_course, actor=platform_admin)
    user = UserFactory(email="mover@example.com")
    data = f"email,department,{course.key}\nmover@example.com,ops,x\nfresh@example.com,,x\n".encode()
    checked = import_check(name="p.csv", data=data, actor=platform_admin, email_students=True)
    assert checked.preview["people_updated"] == 1
    import_run(org_import=checked, actor=platform_admin)
    assert Enrollment.objects.get(user=user, course=other_course).source == Source.UNIT
    assert Enrollment.objects.get(user=user, course=course).source == Source.IMPORT
    assert set(Notification.objects.values_list("recipient", "kind")) >= {("mover@example.com", "enrolled"), ("fresh@example.com", "allowed")}


def test_template_without_a_course_says_what_is_missing(client_for, platform_admin, course):
    client = client_for(platform_admin)
    response = client.get(reverse("org_import_template"))
    html = response.content.decode()
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    field = html.split('id="template-form"', 1)[1].split("</form>", 1)[0]
    assert "Choose at least one course: the template has a column for each course you choose." in field
    assert "autofocus" in field.split("<select", 1)[1].split(">", 1)[0]
    assert client.get(reverse("org_import_template"), {"courses": [course.pk]})["Content-Type"] == XLSX


def test_import_results_are_sentences_with_a_safe_per_row_file(client_for, platform_admin, course, django_capture_on_commit_callbacks):
    from ..factories import AllowanceFactory

    dept = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Sales")
    UserFactory(email="mover@example.com")
    EnrollmentFactory(user=UserFactory(email="in@example.com"), course=course)
    AllowanceFactory(course=course, email="invited@example.com")
    data = (
        f"email,department,{course.key}\n"
        "mover@example.com,Sales,\n"  # 2: moves into Sales
        "in@example.com,,x\n"  # 3: already enrolled
        "invited@example.com,,x\n"  # 4: already invited
        "=1+2@example.com,,x\n"  # 5: a formula-looking address: invited
        "new@example.com,,x\n"  # 6: invited
        "=SUM(A1),,x\n"  # 7: refused by the check
    ).encode()
    client = client_for(platform_admin)
    upload(client, reverse("org_import"), "people.csv", data, django_capture_on_commit_callbacks, "text/csv")
    org_import = OrgImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("org_import_start", args=[org_import.public_id]))
    html = client.get(response["Location"]).content.decode()
    assert "1 person updated, 2 invitations created, 2 left alone (already enrolled or invited)." in html
    assert "5 of 5 rows" in html
    org_import.refresh_from_db()
    url = reverse("org_import_results", args=[org_import.public_id])
    assert f'href="{url}"' in html
    download = client.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    assert download["Content-Disposition"].startswith('attachment; filename="import_results_')
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines == [
        "row,email,what happened",
        "2,mover@example.com,details updated",
        f"3,in@example.com,\"{course.key}: already enrolled, left alone\"",
        f"4,invited@example.com,\"{course.key}: already invited, left alone\"",
        f"5,'=1+2@example.com,{course.key}: invitation created: enrolls when they activate an account",
        f"6,new@example.com,{course.key}: invitation created: enrolls when they activate an account",
        "7,'=SUM(A1),not imported: email: bad email '=SUM(A1)'",
    ]
    assert user_placement(user=UserFactory._meta.model.objects.get(email="mover@example.com")).department == dept


def test_import_results_file_only_for_those_who_may_see_the_import(client_for, platform_admin, course, course_staff, other_staff, learner,
                                                                   django_capture_on_commit_callbacks):
    def imported(client, start_url_name, *args):
        org_import = OrgImport.objects.latest("created")
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse(start_url_name, args=[*args, org_import.public_id]))
        return org_import

    data = f"email,{course.key}\nsomeone@example.com,x\n".encode()
    client = client_for(platform_admin)
    upload(client, reverse("org_import"), "p.csv", data, django_capture_on_commit_callbacks, "text/csv")
    org_wide = imported(client, "org_import_start")
    client = client_for(course_staff)
    upload(client, reverse("course_import", args=[course.key]), "p.csv", data, django_capture_on_commit_callbacks, "text/csv")
    course_only = imported(client, "course_import_start", course.key)
    page = client.get(reverse("course_import", args=[course.key]) + f"?job={OrgImport.objects.get(pk=course_only.pk).job.public_id}")
    course_url = reverse("course_import_results", args=[course.key, course_only.public_id])
    assert f'href="{course_url}"' in page.content.decode()

    org_url = reverse("org_import_results", args=[org_wide.public_id])
    assert client_for(platform_admin).get(org_url).status_code == 200
    assert client_for(platform_admin).get(reverse("org_import_results", args=[course_only.public_id])).status_code == 200
    assert client_for(course_staff).get(course_url).status_code == 200
    for user in (course_staff, other_staff, learner):
        assert client_for(user).get(org_url).status_code == 403
    for user in (other_staff, learner):
        assert client_for(user).get(course_url).status_code == 403
    # another course's URL, or the organisation-wide import through a course URL: not found
    assert client_for(other_staff).get(reverse("course_import_results", args=["course-v1:Acme+OTHER+2026", course_only.public_id])).status_code == 404
    assert client_for(course_staff).get(reverse("course_import_results", args=[course.key, org_wide.public_id])).status_code == 404
    assert client_for(None).get(course_url).status_code == 302
