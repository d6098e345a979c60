"""Open edX client compatibility of the bulk enroll API (issue 15), modelled on
Open edX's own tests of ``bulk_enroll``: the exact JSON of an answer with
cohorts, lists as well as comma-separated strings, unknown cohorts refused
unless ``create_cohorts``, ``dry_run`` answering the same JSON with nothing
written, and emails that greet people by their full name."""

import pytest
from django.core import mail
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from courses.models import Cohort, CohortMembership
from enrollments.models import Allowance, BulkEnrollJob, Enrollment, EnrollmentAudit, Notification, Source
from enrollments.services import notifications_send
from tests.factories import CourseFactory, CourseRoleFactory, EnrollmentFactory, UserFactory

from .test_api import BULK_URL, api

pytestmark = pytest.mark.django_db

NO_ONE = {"enrollment": False, "auto_enroll": False, "user": True, "allowed": False}
ENROLLED = {"enrollment": True, "auto_enroll": False, "user": True, "allowed": False}


def post(client, data, *, use_json=True):
    if use_json:
        return client.post(BULK_URL, data, format="json")
    return client.post(BULK_URL, data)  # multipart, as a form


def expected_answer(course_key, results, *, action="enroll", auto_enroll=False, email_students=False):
    return {
        "action": action,
        "courses": {course_key: {"action": action, "results": results, "auto_enroll": auto_enroll}},
        "email_students": email_students,
        "auto_enroll": auto_enroll,
    }


@pytest.fixture
def staff(course):
    return CourseRoleFactory(course=course, user=UserFactory(username="Bob", email="bob@example.com")).user


@pytest.fixture
def student(db):
    return UserFactory(username="NotEnrolledStudent", first_name="NotEnrolled", last_name="Student")


@pytest.fixture
def cohorted(course):
    for name in ("cohort1", "cohort2"):
        Cohort.objects.create(course=course, name=name)
    return course


def nothing_written(*courses) -> bool:
    return not (
        Enrollment.objects.filter(course__in=courses).exists()
        or Allowance.objects.filter(course__in=courses).exists()
        or EnrollmentAudit.objects.filter(course__in=courses).exists()
        or CohortMembership.objects.filter(course__in=courses).exists()
        or Notification.objects.exists()
        or BulkEnrollJob.objects.exists()
    )


# --- lists as well as comma-separated strings -------------------------------------------------


@pytest.mark.parametrize("use_json", [True, False])
@pytest.mark.parametrize("as_list", [False, True])
def test_courses_identifiers_and_cohorts_as_a_string_or_a_list(course, staff, student, cohorted, use_json, as_list):
    other = CourseFactory(key="course-v1:Acme+ENR102+2026")
    CourseRoleFactory(course=other, user=staff)
    Cohort.objects.create(course=other, name="Red, white")  # a list keeps a name with a comma whole
    UserFactory(username="kim")
    if as_list:
        data = {"identifiers": ["NotEnrolledStudent", "kim"], "courses": [course.key, other.key], "cohorts": ["cohort1", "Red, white"]}
    else:
        data = {"identifiers": "NotEnrolledStudent, kim", "courses": f"{course.key},{other.key}", "cohorts": "cohort1,cohort2"}
        Cohort.objects.create(course=other, name="cohort2")

    response = post(api(staff), {**data, "action": "enroll"}, use_json=use_json)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert list(answer["courses"]) == [course.key, other.key]
    assert [r["identifier"] for r in answer["courses"][other.key]["results"]] == ["NotEnrolledStudent", "kim"]
    second = "Red, white" if as_list else "cohort2"
    assert answer["courses"][other.key]["results"][1]["after"] == {**ENROLLED, "cohort": second}
    assert CohortMembership.objects.get(course=other, user=student).cohort.name == second
    assert CohortMembership.objects.get(course=course, user=student).cohort.name == "cohort1"


def test_a_list_with_one_comma_separated_item_is_split_as_open_edx_does(course, staff, student):
    response = post(api(staff), {"identifiers": ["NotEnrolledStudent,new@example.com"], "courses": [course.key], "action": "enroll"})
    assert response.status_code == 200, response.content
    assert [r["identifier"] for r in response.json()["courses"][course.key]["results"]] == ["NotEnrolledStudent", "new@example.com"]


def test_a_list_of_courses_counts_against_the_course_cap(course, staff):
    response = post(api(staff), {"identifiers": "x@example.com", "courses": [course.key] * 101, "action": "enroll"})
    assert response.status_code == 400 and "At most 100 courses" in response.json()["courses"][0]
    assert nothing_written(course)


# --- cohorts in before and after (Open edX's test_add_to_valid_cohort and its re-adds) ---------


def test_add_to_valid_cohort(course, staff, student, cohorted):
    response = post(api(staff), {"identifiers": student.username, "action": "enroll", "email_students": False,
                                 "courses": course.key, "cohorts": "cohort1"})
    assert response.status_code == 200, response.content
    assert response.json() == expected_answer(course.key, [
        {"identifier": student.username, "before": {**NO_ONE, "cohort": None}, "after": {**ENROLLED, "cohort": "cohort1"}}
    ])
    enrolled, moved = EnrollmentAudit.objects.filter(course=course).order_by("id")
    assert (enrolled.state_before, enrolled.state_after, enrolled.source) == ("none", "enrolled", Source.API)
    assert (moved.state_before, moved.state_after, moved.cohort_before, moved.cohort_after) == ("enrolled", "enrolled", "", "cohort1")
    assert CohortMembership.objects.get(course=course, user=student).cohort.name == "cohort1"


@pytest.mark.parametrize("second", ["cohort2", "cohort1"])
def test_readd_to_a_different_or_the_same_cohort(course, staff, student, cohorted, second):
    client = api(staff)
    post(client, {"identifiers": student.username, "action": "enroll", "courses": course.key, "cohorts": "cohort1"})
    response = post(client, {"identifiers": student.username, "action": "enroll", "courses": course.key, "cohorts": second})
    assert response.status_code == 200, response.content
    assert response.json() == expected_answer(course.key, [
        {"identifier": student.username, "before": {**ENROLLED, "cohort": "cohort1"}, "after": {**ENROLLED, "cohort": second}}
    ])
    assert CohortMembership.objects.get(course=course, user=student).cohort.name == second


def test_cohort_changes_are_audited_with_the_cohorts_before_and_after(course, staff, student, cohorted):
    client = api(staff)
    EnrollmentFactory(course=course, user=UserFactory(username="kim"))

    post(client, {"identifiers": "NotEnrolledStudent, kim", "action": "enroll", "courses": course.key, "cohorts": "cohort1"})
    rows = {(a.identifier, a.state_before, a.state_after, a.cohort_before, a.cohort_after) for a in EnrollmentAudit.objects.all()}
    # Entries are append-only: the new enrollment, then each move, in one operation.
    assert rows == {
        ("NotEnrolledStudent", "none", "enrolled", "", ""), ("NotEnrolledStudent", "enrolled", "enrolled", "", "cohort1"),
        ("kim", "enrolled", "enrolled", "", "cohort1"),
    }
    assert len(set(EnrollmentAudit.objects.values_list("operation_id", flat=True))) == 1

    post(client, {"identifiers": "NotEnrolledStudent, kim", "action": "enroll", "courses": course.key, "cohorts": "cohort2"})
    moves = EnrollmentAudit.objects.filter(cohort_after="cohort2")
    assert {(a.identifier, a.state_before, a.state_after, a.cohort_before, a.source) for a in moves} == {
        ("NotEnrolledStudent", "enrolled", "enrolled", "cohort1", Source.API), ("kim", "enrolled", "enrolled", "cohort1", Source.API),
    }
    # Staying in the same cohort is no change, and not audited.
    post(client, {"identifiers": "NotEnrolledStudent, kim", "action": "enroll", "courses": course.key, "cohorts": "cohort2"})
    assert EnrollmentAudit.objects.count() == 5


def test_without_cohorts_the_states_have_no_cohort_key(course, staff, student):
    answer = post(api(staff), {"identifiers": student.username, "action": "enroll", "courses": course.key}).json()
    assert answer == expected_answer(course.key, [{"identifier": student.username, "before": NO_ONE, "after": ENROLLED}])


def test_cohort_of_invitations_invalid_identifiers_and_a_blank_name(course, staff, student, cohorted):
    other = CourseFactory(key="course-v1:Acme+ENR102+2026")
    CourseRoleFactory(course=other, user=staff)
    kept = Cohort.objects.create(course=other, name="Kept")
    CohortMembership.objects.create(course=other, cohort=kept, user=student)

    answer = post(api(staff), {
        "identifiers": ["NotEnrolledStudent", "new@example.com", "nobody", student.email],
        "courses": [course.key, other.key], "cohorts": ["cohort2", ""], "action": "enroll", "auto_enroll": True,
    }).json()

    invited = {"enrollment": False, "auto_enroll": True, "user": False, "allowed": True, "cohort": None}
    nobody = {"enrollment": False, "auto_enroll": False, "user": False, "allowed": False, "cohort": None}
    first, _, _, twice = answer["courses"][course.key]["results"]
    assert first["after"]["cohort"] == "cohort2" and twice["before"]["cohort"] == twice["after"]["cohort"] == "cohort2"
    assert answer["courses"][course.key]["results"][1:3] == [
        {"identifier": "new@example.com", "before": {**nobody}, "after": invited},
        {"identifier": "nobody", "before": nobody, "after": nobody, "invalidIdentifier": True},
    ]
    # A blank name leaves the person's cohort alone, and says which it is.
    kept_result = answer["courses"][other.key]["results"][0]
    assert kept_result["before"]["cohort"] == kept_result["after"]["cohort"] == "Kept"
    assert CohortMembership.objects.get(course=other, user=student).cohort == kept


# --- a misspelled cohort is refused unless create_cohorts -------------------------------------


def test_fail_on_missing_cohorts_and_nothing_changes_in_any_course(course, staff, student, cohorted):
    other = CourseFactory(key="course-v1:Acme+ENR102+2026")
    CourseRoleFactory(course=other, user=staff)
    Cohort.objects.create(course=other, name="Blue")

    response = post(api(staff), {"identifiers": [student.username, "new@example.com"], "action": "enroll",
                                 "courses": [course.key, other.key], "cohorts": ["cohort1", "Bleu"]})

    assert response.status_code == 400
    messages = response.json()["cohorts"]
    assert f"Cohort 'Bleu' not found in course {other.key}." in messages
    assert not any("cohort1" in m for m in messages)
    assert "create_cohorts" in messages[-1]
    assert set(Cohort.objects.values_list("name", flat=True)) == {"cohort1", "cohort2", "Blue"}
    assert nothing_written(course, other)


def test_create_cohorts_creates_the_missing_cohort(course, staff, student):
    response = post(api(staff), {"identifiers": student.username, "action": "enroll", "courses": course.key,
                                 "cohorts": "Brand new", "create_cohorts": True})
    assert response.status_code == 200, response.content
    assert response.json()["courses"][course.key]["results"][0]["after"]["cohort"] == "Brand new"
    assert CohortMembership.objects.get(course=course, user=student).cohort.name == "Brand new"


def test_cohort_names_match_exactly(course, staff, student, cohorted):
    response = post(api(staff), {"identifiers": student.username, "action": "enroll", "courses": course.key, "cohorts": "Cohort1"})
    assert response.status_code == 400 and "Cohort 'Cohort1' not found" in response.json()["cohorts"][0]
    assert nothing_written(course)


def test_a_queued_call_refuses_an_unknown_cohort_before_queueing(settings, course, staff, student, cohorted):
    settings.ENROLLMENT_SYNC_LIMIT = 1
    response = post(api(staff), {"identifiers": "NotEnrolledStudent, a@example.com", "action": "enroll",
                                 "courses": course.key, "cohorts": "cohortl"})
    assert response.status_code == 400 and "cohortl" in response.json()["cohorts"][0]
    assert nothing_written(course)


def test_a_job_fails_when_its_cohort_is_gone_by_the_time_it_runs(course, staff, student, cohorted):
    from enrollments.services import bulk_enroll_job_create, bulk_enroll_job_run

    job = bulk_enroll_job_create(requester=staff, courses=[course], identifiers=[student.username], action="enroll",
                                 auto_enroll=False, email_students=False, cohorts=["cohort1"])
    Cohort.objects.filter(name="cohort1").delete()
    job = bulk_enroll_job_run(job_id=job.pk)
    assert job.status == "failed" and "Cohort 'cohort1' not found" in job.error
    assert not Enrollment.objects.filter(course=course).exists()
    assert not Cohort.objects.filter(course=course, name="cohort1").exists()


# --- dry_run: the same JSON, nothing written ---------------------------------------------------


def test_dry_run_answers_what_the_real_call_then_does_with_nothing_written(
    course, staff, student, cohorted, django_capture_on_commit_callbacks
):
    former = UserFactory(username="former", first_name="Ada", last_name="Lovelace")
    EnrollmentFactory(course=course, user=former, is_active=False)
    Allowance.objects.create(course=course, email="invited@example.com", auto_enroll=False)
    data = {
        "identifiers": ["NotEnrolledStudent", "former", "invited@example.com", "new@example.com", "nobody", "bad@"],
        "action": "enroll", "auto_enroll": True, "email_students": True, "courses": course.key,
        "cohorts": "Fresh", "create_cohorts": True, "reason": "Spring intake",
    }
    client = api(staff)
    audits, enrollments = EnrollmentAudit.objects.count(), list(Enrollment.objects.values_list("user_id", "is_active"))

    with django_capture_on_commit_callbacks() as callbacks:
        dry = post(client, {**data, "dry_run": True})

    assert dry.status_code == 200, dry.content
    assert callbacks == []  # no email task, no job
    assert EnrollmentAudit.objects.count() == audits
    assert list(Enrollment.objects.values_list("user_id", "is_active")) == enrollments
    assert list(Allowance.objects.values_list("email", "auto_enroll")) == [("invited@example.com", False)]
    assert not Cohort.objects.filter(name="Fresh").exists() and not CohortMembership.objects.exists()
    assert not Notification.objects.exists() and not BulkEnrollJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        real = post(client, data)
    assert real.status_code == 200
    assert dry.json() == real.json()
    results = real.json()["courses"][course.key]["results"]
    assert [r["after"]["cohort"] for r in results] == ["Fresh", "Fresh", None, None, None, None]
    assert Notification.objects.count() == 4 and EnrollmentAudit.objects.count() == audits + 4 + 2  # 2 cohort moves


def test_dry_run_of_an_unenroll(course, staff, student):
    EnrollmentFactory(course=course, user=student)
    Allowance.objects.create(course=course, email="invited@example.com", auto_enroll=True)
    client = api(staff)
    data = {"identifiers": "NotEnrolledStudent invited@example.com", "action": "unenroll", "courses": course.key, "email_students": True}
    dry = post(client, {**data, "dry_run": "true"}, use_json=False)
    assert dry.status_code == 200, dry.content
    assert Enrollment.objects.get(course=course, user=student).is_active
    assert Allowance.objects.filter(course=course).exists()
    assert not EnrollmentAudit.objects.exists() and not Notification.objects.exists()
    assert dry.json() == post(client, data).json()
    assert not Enrollment.objects.get(course=course, user=student).is_active


def test_dry_run_above_the_sync_limit_is_refused_without_a_job(settings, course, staff):
    settings.ENROLLMENT_SYNC_LIMIT = 2
    response = post(api(staff), {"identifiers": "a@example.com b@example.com c@example.com", "action": "enroll",
                                 "courses": course.key, "dry_run": True})
    assert response.status_code == 400
    assert response.json()["dry_run"] == [
        "A dry run answers for at most 2 identifiers times courses; this call has 3. Split the list and try again; nothing was changed."
    ]
    assert nothing_written(course)


@pytest.mark.parametrize(("persona", "status"), [("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 401)])
def test_dry_run_persona_matrix(request, course, persona, status):
    client = api(request.getfixturevalue(persona) if persona else None)
    response = post(client, {"identifiers": "someone@example.com", "action": "enroll", "courses": course.key, "dry_run": True})
    assert response.status_code == status, response.content
    assert nothing_written(course)


def test_dry_run_refuses_an_unknown_cohort_as_the_real_call_does(course, staff, student, cohorted):
    response = post(api(staff), {"identifiers": student.username, "action": "enroll", "courses": course.key,
                                 "cohorts": "cohort3", "dry_run": True})
    assert response.status_code == 400 and "cohort3" in response.json()["cohorts"][0]


# --- emails greet people by their full name, on every path of the API ----------------------


@pytest.mark.parametrize(("first", "last", "greeting"), [("Ada", "Lovelace", "Dear Ada Lovelace,"), ("", "", "Dear ada,")])
def test_api_emails_greet_by_full_name_or_username(course, staff, django_capture_on_commit_callbacks, first, last, greeting):
    UserFactory(username="ada", email="ada@example.com", first_name=first, last_name=last)
    client = api(staff)
    for action in ("enroll", "unenroll"):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, {"identifiers": "ada", "action": action, "courses": course.key, "email_students": True})
        assert response.status_code == 200
        notifications_send()
        [message] = [m for m in mail.outbox if m.to == ["ada@example.com"]]
        assert message.body.startswith(greeting + "\n"), action


def test_a_withdrawn_invitation_greets_an_account_holder_by_name(course, staff, django_capture_on_commit_callbacks):
    # An invitation to an address whose owner has an account but never enrolled.
    UserFactory(username="ada", email="ada@example.com", first_name="Ada", last_name="Lovelace")
    Allowance.objects.create(course=course, email="ada@example.com", auto_enroll=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api(staff), {"identifiers": "ada@example.com", "action": "unenroll", "courses": course.key, "email_students": True})
    assert response.json()["courses"][course.key]["results"][0]["after"]["allowed"] is False
    notifications_send()
    [message] = [m for m in mail.outbox if m.to == ["ada@example.com"]]
    assert "withdrawn" in message.subject and message.body.startswith("Dear Ada Lovelace,\n")


# --- a dry run equals the call it previews, for random lists and starting states -------------

PEOPLE = [f"p{i}" for i in range(5)]
ADDRESSES = [f"e{i}@example.com" for i in range(3)]
POOL = PEOPLE + [f"{p}@example.com" for p in PEOPLE] + ADDRESSES + ["nobody", "bad@"]


def snapshot(course) -> tuple:
    return (
        sorted(Enrollment.objects.filter(course=course).values_list("user__username", "is_active", "mode")),
        sorted(Allowance.objects.filter(course=course).values_list("email_key", "auto_enroll")),
        sorted(CohortMembership.objects.filter(course=course).values_list("user__username", "cohort__name")),
        sorted(Cohort.objects.filter(course=course).values_list("name", flat=True)),
        EnrollmentAudit.objects.filter(course=course).count(),
        Notification.objects.count(),
    )


@given(
    people=st.lists(st.sampled_from(["none", "enrolled", "unenrolled"]), min_size=len(PEOPLE), max_size=len(PEOPLE)),
    cohorts=st.lists(st.sampled_from(["", "A", "B"]), min_size=len(PEOPLE), max_size=len(PEOPLE)),
    invited=st.lists(st.sampled_from([None, False, True]), min_size=len(ADDRESSES), max_size=len(ADDRESSES)),
    identifiers=st.lists(st.sampled_from(POOL), min_size=1, max_size=12),
    action=st.sampled_from(["enroll", "unenroll"]),
    auto_enroll=st.booleans(),
    cohort=st.sampled_from(["", "A", "B", "New"]),
)
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_a_dry_run_answers_what_the_call_then_does(course, staff, people, cohorts, invited, identifiers, action, auto_enroll, cohort):
    from enrollments.services import enrollment_bulk_update

    with transaction.atomic():  # each example starts from the same empty course
        groups = {name: Cohort.objects.create(course=course, name=name) for name in ("A", "B")}
        for name, state, group in zip(PEOPLE, people, cohorts, strict=True):
            user = UserFactory(username=name, email=f"{name}@example.com", first_name="", last_name="")
            if state != "none":
                EnrollmentFactory(course=course, user=user, is_active=state == "enrolled")
            if group:
                CohortMembership.objects.create(course=course, cohort=groups[group], user=user)
        for address, auto in zip(ADDRESSES, invited, strict=True):
            if auto is not None:
                Allowance.objects.create(course=course, email=address, auto_enroll=auto)
        call = {
            "courses": [course], "identifiers": identifiers, "action": action, "auto_enroll": auto_enroll, "email_students": True,
            "actor": staff, "cohorts": [cohort] if cohort and action == "enroll" else [], "create_cohorts": True,
        }
        before = snapshot(course)
        preview = enrollment_bulk_update(**call, dry_run=True)
        assert snapshot(course) == before
        assert enrollment_bulk_update(**call) == preview
        transaction.set_rollback(True)


@pytest.mark.postgresql
def test_a_dry_run_takes_the_same_queries_for_10_and_1000_identifiers(course, staff):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    User = get_user_model()  # noqa: N806
    Cohort.objects.create(course=course, name="Red")
    client = api(staff)
    post(client, {"identifiers": "warm@example.com", "action": "enroll", "courses": course.key, "cohorts": "Red", "dry_run": True})

    def run(size, tag):
        users = User.objects.bulk_create([User(username=f"{tag}{i}", email=f"{tag}{i}@example.com") for i in range(size // 2)])
        identifiers = [u.username for u in users] + [f"new-{tag}{i}@example.com" for i in range(size - len(users))]
        with CaptureQueriesContext(connection) as queries:
            response = post(client, {"identifiers": identifiers, "action": "enroll", "courses": course.key, "cohorts": "Red",
                                     "email_students": True, "dry_run": True})
        assert response.status_code == 200, response.content
        assert len(response.json()["courses"][course.key]["results"]) == size
        return len(queries)

    small, large = run(10, "s"), run(1000, "l")
    assert small == large, (small, large)
    assert not Enrollment.objects.filter(course=course).exists()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_dry_run_at_the_same_moment_as_a_real_call_leaves_only_the_real_calls_changes(course, staff):
    """Both lock the same rows; the dry run's writes are rolled back whichever
    goes first, so what stays is exactly the real call's, audited and mailed once."""
    from collections import Counter

    from tests.races import fire_together

    users = [UserFactory(username=f"race{i}", email=f"race{i}@example.com") for i in range(40)]
    for user in users:
        EnrollmentFactory(course=course, user=user)
    emails = [f"new{i}@example.com" for i in range(40)]
    for email in emails:
        Allowance.objects.create(course=course, email=email, auto_enroll=True)
    identifiers = [u.username for u in users] + emails
    real = {"identifiers": identifiers, "action": "unenroll", "courses": course.key, "email_students": True}
    # The dry run enrolls the same people into a new cohort: had it written anything, it would show.
    dry = {"identifiers": identifiers, "action": "enroll", "courses": course.key, "email_students": True, "auto_enroll": False,
           "cohorts": "Red", "create_cohorts": True, "dry_run": True}

    answers = fire_together([api(staff), api(staff)], lambda i, client: post(client, dry if i else real))

    assert [getattr(a, "status_code", a) for a in answers] == [200, 200]
    assert not Enrollment.objects.filter(course=course, is_active=True).exists()
    assert not Allowance.objects.filter(course=course).exists()
    assert not Cohort.objects.filter(course=course).exists() and not CohortMembership.objects.exists()
    audits = Counter(EnrollmentAudit.objects.filter(course=course).values_list("identifier", "state_before", "state_after"))
    assert audits == Counter([(u.username, "enrolled", "unenrolled") for u in users] + [(e, "allowed_auto", "none") for e in emails])
    assert Counter(Notification.objects.values_list("recipient", flat=True)) == Counter([u.email for u in users] + emails)
    previewed = answers[1].json()["courses"][course.key]["results"]
    assert {(r["after"]["enrollment"], r["after"]["cohort"]) for r in previewed[:40]} == {(True, "Red")}
