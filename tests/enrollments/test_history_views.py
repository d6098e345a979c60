"""The pages of a learner's story, the audit log (with its export) and the
invitations table: the persona matrix, bad input, and what each shows and does."""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from enrollments.models import Allowance, EnrollmentAudit, Notification, Source, State
from enrollments.services import enrollment_batch_update
from tests.factories import AllowanceFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["learner_story", "instructor_invitations", "instructor_audit", "instructor_audit_export"]


def url(name, course, **query):
    from urllib.parse import urlencode

    return reverse(name, args=[course.key]) + ("?" + urlencode(query, doseq=True) if query else "")


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture(autouse=True)
def _no_delivery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"


# --- the persona matrix -----------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("persona, status", [
    ("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302),
])
def test_pages_are_for_the_course_team(request, client_for, course, name, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    response = client_for(user).get(url(name, course))
    assert response.status_code == status
    if persona is None:
        assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", [*PAGES, "invitations_action"])
def test_an_unknown_course_is_404(client_for, course_admin, name):
    assert client_for(course_admin).get(reverse(name, args=["course-v1:No+SUCH+2026"])).status_code == 404


@pytest.mark.parametrize("persona", ["other_staff", "learner"])
def test_outsiders_cannot_resend_or_revoke(request, client_for, course, persona):
    allowance = AllowanceFactory(course=course)
    response = client_for(request.getfixturevalue(persona)).post(url("invitations_action", course), {"action": "revoke", "allowance": allowance.pk})
    assert response.status_code == 403
    assert Allowance.objects.filter(pk=allowance.pk).exists() and not EnrollmentAudit.objects.exists()


def test_staff_of_another_course_cannot_reach_this_courses_invitations_through_their_own(client_for, course, other_course, other_staff):
    """Guessed ids: an invitation of this course, posted to the other course's address, changes nothing."""
    allowance = AllowanceFactory(course=course)
    client = client_for(other_staff)
    response = client.post(url("invitations_action", other_course), {"action": "revoke", "allowance": allowance.pk})
    assert response.status_code == 302
    assert Allowance.objects.filter(pk=allowance.pk).exists() and not EnrollmentAudit.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "no longer open" in page
    confirm = client.get(url("invitations_action", other_course, action="revoke", allowance=allowance.pk)).content.decode()
    assert "No open invitation selected" in confirm and allowance.email not in confirm


def test_actions_need_csrf(course, course_admin):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(course_admin)
    allowance = AllowanceFactory(course=course)
    assert client.post(url("invitations_action", course), {"action": "revoke", "allowance": allowance.pk}).status_code == 403
    assert Allowance.objects.filter(pk=allowance.pk).exists()


# --- a learner's story -----------------------------------------------------------------------


def test_the_story_page_shows_state_history_and_emails(client_for, course, course_staff, learner):
    enrollment_batch_update(course=course, identifiers=[learner.username], action="enroll", auto_enroll=True, email_students=True,
                            actor=course_staff, reason="cohort A")
    response = client_for(course_staff).get(url("learner_story", course, who=learner.email.upper()))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="story-state">enrolled<' in html
    assert "not enrolled → enrolled" in html and "Reason: cohort A" in html and "by coursestaff" in html
    assert "Email “Enrolled” to learner@example.com" in html and ">queued<" in html


def test_the_story_panel_alone_for_htmx(client_for, course, course_staff, learner):
    response = client_for(course_staff).get(url("learner_story", course, who=learner.username), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="story-panel"') and "<nav" not in html


@pytest.mark.parametrize("who, status, says", [
    ("nobody_here", 200, "No account named nobody_here"),
    ("not valid@", 200, "neither a username nor"),
    ("x" * 321, 400, "at most 320 characters"),
    ("a\x00b", 400, "Null characters are not allowed"),
    ("", 400, "This field is required"),
])
def test_the_story_answers_bad_input_with_a_message(client_for, course, course_staff, who, status, says):
    response = client_for(course_staff).get(url("learner_story", course, who=who))
    assert response.status_code == status and says in response.content.decode()


def test_the_story_of_an_invited_address(client_for, course, course_staff):
    enrollment_batch_update(course=course, identifiers=["invited@example.org"], action="enroll", auto_enroll=False, email_students=True,
                            actor=course_staff)
    html = client_for(course_staff).get(url("learner_story", course, who="invited@example.org")).content.decode()
    assert "allowed: must enroll themself" in html and "open, must enroll themself" in html


# --- the audit log -------------------------------------------------------------------------------


def _batch(course, actor, identifiers, action="enroll", reason=""):
    return enrollment_batch_update(course=course, identifiers=identifiers, action=action, auto_enroll=True, email_students=False,
                                   actor=actor, reason=reason)


def test_the_audit_log_shows_changes_newest_first_with_their_operation_size(client_for, course, course_admin, other_course):
    users = [UserFactory(username=f"member{i}") for i in range(3)]
    first = _batch(course, course_admin, [u.username for u in users], reason="spring")
    _batch(course, course_admin, ["member0"], action="unenroll", reason="left early")
    _batch(other_course, course_admin, ["member1"], reason="elsewhere")
    response = client_for(course_admin).get(url("instructor_audit", course))
    rows = response.context["page"].rows
    assert [r.state_after for r in rows] == [State.UNENROLLED, State.ENROLLED, State.ENROLLED, State.ENROLLED]
    html = response.content.decode()
    assert "left early" in html and "elsewhere" not in html
    assert f"?operation={first.operation_id}" in html and "3 changes" in html and "1 change<" in html


def test_filtering_by_operation_says_its_size(client_for, course, course_admin):
    users = [UserFactory(username=f"op{i}") for i in range(2)]
    op = _batch(course, course_admin, [u.username for u in users]).operation_id
    _batch(course, course_admin, ["op0"], action="unenroll")
    response = client_for(course_admin).get(url("instructor_audit", course, operation=str(op)))
    assert len(response.context["page"].rows) == 2
    assert "2 changes," in response.content.decode()


@pytest.mark.parametrize("query, field", [
    ({"actor": "ghost"}, "No account with the username or email ghost"),
    ({"source": "telepathy"}, "Select a valid choice"),
    ({"action": "teleported"}, "Select a valid choice"),
    ({"since": "2026-13-40"}, "Enter a valid date"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, "before its start"),
    ({"operation": "'; DROP TABLE x; --"}, "Not an operation id"),
    ({"cursor": "garbage"}, "page link is not valid"),
    ({"actor": "a" * 400}, "at most 320 characters"),
])
def test_bad_filters_say_what_is_wrong_and_show_nothing(client_for, course, course_admin, query, field):
    _batch(course, course_admin, [course_admin.username])
    response = client_for(course_admin).get(url("instructor_audit", course, **query))
    assert response.status_code == 400
    html = response.content.decode()
    assert field in html and 'id="audit-table"' not in html and 'autofocus' in html


def test_filters_by_actor_source_action_and_dates(client_for, course, course_admin, course_staff):
    UserFactory(username="a1")
    _batch(course, course_admin, ["a1"])
    _batch(course, course_staff, ["a1"], action="unenroll")
    client = client_for(course_admin)
    by_staff = client.get(url("instructor_audit", course, actor=course_staff.email.upper())).context["page"].rows
    assert [r.actor_id for r in by_staff] == [course_staff.pk]
    assert [r.state_after for r in client.get(url("instructor_audit", course, action="unenrolled")).context["page"].rows] == ["unenrolled"]
    assert client.get(url("instructor_audit", course, source=Source.CODE)).context["page"].rows == []
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert client.get(url("instructor_audit", course, since=tomorrow)).context["page"].rows == []
    assert len(client.get(url("instructor_audit", course, until=tomorrow)).context["page"].rows) == 2


def test_audit_pages_follow_the_older_link(client_for, course, course_admin, settings):
    EnrollmentAudit.objects.bulk_create([
        EnrollmentAudit(course=course, identifier=f"p{i}", state_before=State.NONE, state_after=State.ENROLLED, source=Source.API)
        for i in range(55)
    ])
    client = client_for(course_admin)
    first = client.get(url("instructor_audit", course, source="api"))
    assert len(first.context["page"].rows) == 50
    second = client.get(url("instructor_audit", course, source="api", cursor=first.context["page"].next_cursor))
    assert len(second.context["page"].rows) == 5 and 'rel="prev"' in second.content.decode()
    assert {r.pk for r in first.context["page"].rows}.isdisjoint({r.pk for r in second.context["page"].rows})


def test_the_export_is_the_filtered_log_with_safe_cells(client_for, course, course_admin):
    UserFactory(username="csvperson", email="csvperson@example.com")
    _batch(course, course_admin, ["csvperson"], reason="=HYPERLINK(\"http://evil\")")
    _batch(course, course_admin, ["=cmd@example.com"])
    response = client_for(course_admin).get(url("instructor_audit_export", course, action="enrolled"))
    assert response["Content-Type"].startswith("text/csv") and "audit_log" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0][:4] == ["created", "actor", "identifier", "username"]
    assert len(rows) == 2
    assert rows[1][2] == "csvperson" and rows[1][8] == "'=HYPERLINK(\"http://evil\")"
    everything = read_csv(client_for(course_admin).get(url("instructor_audit_export", course)))
    assert any(row[2] == "'=cmd@example.com" for row in everything)


def test_the_export_refuses_bad_filters(client_for, course, course_admin):
    assert client_for(course_admin).get(url("instructor_audit_export", course, since="yesterday")).status_code == 400


# --- invitations -------------------------------------------------------------------------------


def test_the_invitations_table_lists_open_invitations_with_search(client_for, course, course_admin, other_course):
    AllowanceFactory(course=course, email="ana@example.com", created_by=course_admin)
    AllowanceFactory(course=course, email="bob@example.com")
    AllowanceFactory(course=course, email="used@example.com", used_at=timezone.now())
    AllowanceFactory(course=other_course, email="elsewhere@example.com")
    client = client_for(course_admin)
    html = client.get(url("instructor_invitations", course)).content.decode()
    assert "ana@example.com" in html and "bob@example.com" in html and "used@" not in html and "elsewhere" not in html
    assert 'id="invitations-total">2<' in html and "courseadmin" in html and "not emailed" in html
    searched = client.get(url("instructor_invitations", course, q="ANA")).content.decode()
    assert "ana@example.com" in searched and "bob@example.com" not in searched and 'id="invitations-total">1<' in searched


@pytest.mark.parametrize("query, says", [({"q": "x" * 101}, "at most 100 characters"), ({"cursor": "%%%"}, "not valid")])
def test_bad_invitation_searches_say_why(client_for, course, course_admin, query, says):
    response = client_for(course_admin).get(url("instructor_invitations", course, **query))
    assert response.status_code == 400 and says in response.content.decode()


def test_revoke_asks_first_with_the_count_then_revokes_and_redirects(client_for, course, course_staff):
    a = AllowanceFactory(course=course, email="one@example.com")
    b = AllowanceFactory(course=course, email="two@example.com")
    client = client_for(course_staff)
    confirm = client.get(url("invitations_action", course, action="revoke", allowance=[a.pk, b.pk]))
    html = confirm.content.decode()
    assert confirm.status_code == 200 and "Revoke 2 invitations?" in html and "2 people" in html
    assert Allowance.objects.count() == 2  # asking changed nothing
    done = client.post(url("invitations_action", course), {"action": "revoke", "allowance": [a.pk, b.pk], "reason": "typo",
                                                           "email_students": "1"})
    assert done.status_code == 302 and done["Location"] == reverse("instructor_invitations", args=[course.key])
    assert not Allowance.objects.exists()
    assert set(EnrollmentAudit.objects.values_list("identifier", "reason", "actor")) == {
        ("one@example.com", "typo", course_staff.pk), ("two@example.com", "typo", course_staff.pk),
    }
    assert Notification.objects.filter(kind=Notification.Kind.ALLOWANCE_REMOVED).count() == 2
    assert "2 invitations revoked." in client.get(done["Location"]).content.decode()


def test_revoke_every_invitation_matching_the_search(client_for, course, course_admin):
    for name in ("x1", "x2", "x3", "y1"):
        AllowanceFactory(course=course, email=f"{name}@test.org")
    client = client_for(course_admin)
    html = client.get(url("invitations_action", course, action="revoke", all="1", q="x")).content.decode()
    assert "Revoke 3 invitations?" in html
    client.post(url("invitations_action", course), {"action": "revoke", "all": "1", "q": "x"})
    assert list(Allowance.objects.values_list("email", flat=True)) == ["y1@test.org"]
    assert not Notification.objects.exists()  # emailing them was not asked for


def test_resend_one_row_then_again_too_soon(client_for, course, course_admin):
    a = AllowanceFactory(course=course, email="again@example.com")
    client = client_for(course_admin)
    first = client.post(url("invitations_action", course), {"action": "resend", "allowance": a.pk}, follow=True)
    assert "1 invitation emailed again." in first.content.decode()
    second = client.post(url("invitations_action", course), {"action": "resend", "allowance": a.pk}, follow=True)
    assert "was emailed less than 10 minutes ago" in second.content.decode()
    assert Notification.objects.filter(recipient_key="again@example.com").count() == 1
    assert "queued" in client.get(url("instructor_invitations", course)).content.decode()


@pytest.mark.parametrize("data, says", [
    ({"action": "delete", "allowance": "1"}, "Choose Resend or Revoke"),
    ({"action": "revoke"}, "Select at least one invitation"),
    ({"action": "revoke", "allowance": "abc"}, "Select a valid choice"),
    ({"action": "revoke", "allowance": "1", "reason": "r" * 501}, "at most 500 characters"),
])
def test_bad_actions_change_nothing_and_say_why(client_for, course, course_admin, data, says):
    AllowanceFactory(course=course, pk=1)
    response = client_for(course_admin).post(url("invitations_action", course), data)
    assert response.status_code == 400 and says in response.content.decode()
    assert Allowance.objects.count() == 1 and not EnrollmentAudit.objects.exists()


def test_the_audit_log_tab_is_on_the_dashboard(client_for, course, course_staff):
    html = client_for(course_staff).get(reverse("instructor_info", args=[course.key])).content.decode()
    assert f'href="{reverse("instructor_audit", args=[course.key])}"' in html and "Audit log" in html


def test_operation_uuid_unknown_shows_no_rows(client_for, course, course_admin):
    response = client_for(course_admin).get(url("instructor_audit", course, operation=str(uuid.uuid4())))
    assert response.status_code == 200 and response.context["page"].rows == []


def test_mode_and_cohort_changes_show_in_the_story_the_log_and_the_export(client_for, course, course_admin, learner):
    from courses.models import Cohort
    from enrollments.models import Enrollment
    from enrollments.services import roster_apply

    _batch(course, course_admin, [learner.username])
    enrollment = Enrollment.objects.get(user=learner, course=course)
    roster_apply(actor=course_admin, course=course, action="change_mode", enrollment_ids=[enrollment.pk], mode="verified", reason="paid")
    cohort = Cohort.objects.create(course=course, name="Blue")
    roster_apply(actor=course_admin, course=course, action="move_cohort", enrollment_ids=[enrollment.pk], cohort=cohort)
    client = client_for(course_admin)
    story = client.get(url("learner_story", course, who=learner.username)).content.decode()
    assert "mode audit → verified" in story and "cohort no cohort → Blue" in story
    log = client.get(url("instructor_audit", course)).content.decode()
    assert "mode audit → verified" in log and "cohort no cohort → Blue" in log
    rows = read_csv(client.get(url("instructor_audit_export", course)))
    header = rows[0]
    by_reason = {row[header.index("reason")]: row for row in rows[1:]}
    assert by_reason["paid"][header.index("mode_before")] == "audit" and by_reason["paid"][header.index("mode_after")] == "verified"


def _page_queries(client, address) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(address).status_code == 200
    return len(queries)


def test_the_audit_page_and_the_invitations_page_cost_the_same_queries_at_two_sizes(client_for, course, other_course, course_admin):
    """Each page at 10 rows (two operations) and at 200 (seven): the same number of queries."""
    client = client_for(course_admin)
    counts = []
    for target, n in ((course, 10), (other_course, 200)):
        if target is other_course:
            from courses.models import CourseRole

            CourseRole.objects.create(course=other_course, user=course_admin, role=CourseRole.Role.ADMIN)
        EnrollmentAudit.objects.bulk_create([
            EnrollmentAudit(course=target, actor=course_admin, identifier=f"p{i}", state_before=State.NONE, state_after=State.ENROLLED,
                            source=Source.API, operation_id=uuid.UUID(int=i % (2 if n == 10 else 7) + (1000 if n == 200 else 0)))
            for i in range(n)
        ])
        Allowance.objects.bulk_create([
            Allowance(course=target, email=f"i{i}@example.org", email_key=f"i{i}@example.org", created_by=course_admin) for i in range(n)
        ])
        counts.append((
            _page_queries(client, url("instructor_audit", target)),
            _page_queries(client, url("instructor_audit", target, source="api", actor="courseadmin")),
            _page_queries(client, url("instructor_invitations", target)),
            _page_queries(client, url("learner_story", target, who="p3")),
        ))
    assert counts[0] == counts[1]


def test_an_operation_of_another_course_shows_nothing_here(client_for, course, other_course, course_admin):
    op = _batch(other_course, None, ["someone@example.org"]).operation_id
    response = client_for(course_admin).get(url("instructor_audit", course, operation=str(op)))
    assert response.status_code == 200 and response.context["page"].rows == []
    assert "someone@example.org" not in response.content.decode()


def test_revoking_every_match_asks_again_when_the_search_matches_more_since(client_for, course, course_admin):
    AllowanceFactory(course=course, email="a1@test.org")
    client = client_for(course_admin)
    assert "Revoke 1 invitation?" in client.get(url("invitations_action", course, action="revoke", all="1", q="a")).content.decode()
    AllowanceFactory(course=course, email="a2@test.org")  # invited meanwhile
    response = client.post(url("invitations_action", course), {"action": "revoke", "all": "1", "q": "a", "expected": "1"}, follow=True)
    html = response.content.decode()
    assert "matches 2 invitations now, not the 1 you confirmed; nothing was changed" in html and "Revoke 2 invitations?" in html
    assert Allowance.objects.count() == 2 and not EnrollmentAudit.objects.exists()
