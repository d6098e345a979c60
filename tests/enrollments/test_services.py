"""The batch enrollment service: every rule of the Membership page."""

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from enrollment_site.lib.identifiers import (
    NoIdentifierColumn,
    identifiers_from_csv_text,
    identifiers_from_plain_text,
    parse_identifiers,
)
from enrollments.models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Notification, Source, State
from enrollments.services import (
    Outcome,
    SelfEnrollmentRefused,
    TooManyIdentifiers,
    allowance_consume_for,
    batch_job_create,
    batch_job_run_inline,
    enrollment_batch_update,
    enrollment_self_enroll,
    enrollment_self_unenroll,
    notifications_send,
)
from tests.factories import AllowanceFactory, CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(course, identifiers, action="enroll", auto_enroll=True, email_students=False, actor=None, **kw):
    return enrollment_batch_update(
        course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll,
        email_students=email_students, actor=actor, **kw,
    )


def outcomes(result):
    return {r.identifier: r.outcome for r in result.results}


# --- parsing -------------------------------------------------------------------


def test_parser_splits_on_commas_whitespace_and_newlines_and_counts_duplicates_once():
    parsed = parse_identifiers("a@x.com, A@X.COM\nbob\tBob  carol,,\r\n\ufeffdave\u200b")
    assert [p.text for p in parsed] == ["a@x.com", "bob", "carol", "dave"]
    assert [p.kind for p in parsed] == ["email", "username", "username", "username"]


def test_parser_treats_idn_domain_and_its_punycode_as_the_same_address():
    parsed = parse_identifiers("jose@bücher.example jose@xn--bcher-kva.example")
    assert len(parsed) == 1


def test_parser_marks_malformed_emails_invalid():
    parsed = parse_identifiers("not-an-email@ a@b@c @example.com good@example.com")
    assert [p.kind for p in parsed] == ["invalid", "invalid", "invalid", "email"]


# --- uploaded files: which column is read -------------------------------------------


@pytest.mark.parametrize("heading", ["email", "Email", "E-mail address", "username", "User name", "identifier"])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_the_column_headed_email_username_or_identifier_is_read_wherever_it_is(heading, position):
    columns = [["name", "Jane Doe", "Bob"], ["department", "Sales", "R&D"]]
    columns.insert(position, [heading, "jane@example.com", "bob"])
    text = "\n".join(",".join(row) for row in zip(*columns, strict=True)) + "\n"
    read = identifiers_from_csv_text(text)
    assert read.tokens == ["jane@example.com", "bob"]
    assert (read.column, read.heading, read.rows) == (position + 1, heading, 2)


def test_email_name_file_never_reads_the_names():
    # The file: before, "email", "name" and every name became identifiers,
    # and a name equal to a username enrolled that person.
    read = identifiers_from_csv_text("email,name\nann@example.com,learner1\nben@example.com,Ben Smith\n")
    assert read.tokens == ["ann@example.com", "ben@example.com"]
    assert (read.column, read.heading, read.rows) == (1, "email", 2)


def test_an_identifier_heading_wins_over_email_and_email_over_username():
    assert identifiers_from_csv_text("username,email\nann,ann@example.com\n").tokens == ["ann@example.com"]
    assert identifiers_from_csv_text("email,identifier\nann@example.com,ann\n").tokens == ["ann"]


def test_without_a_heading_row_the_first_column_of_every_row_is_read():
    read = identifiers_from_csv_text("ann@example.com,Ann Lee\n\nlearner1,Learner One\n,nobody\n")
    assert read.tokens == ["ann@example.com", "learner1"]
    assert (read.column, read.heading, read.rows, read.empty) == (1, "", 3, 1)


def test_semicolon_and_tab_separated_files_are_read_by_column():
    assert identifiers_from_csv_text("Name;E-mail\nAnn Lee;ann@example.com\n").tokens == ["ann@example.com"]
    assert identifiers_from_csv_text("name\tusername\nAnn Lee\tann\n").tokens == ["ann"]


def test_a_heading_row_without_an_identifier_column_is_refused():
    with pytest.raises(NoIdentifierColumn, match="none of them is email, username or identifier"):
        identifiers_from_csv_text("name,department\nAnn Lee,Sales\n")


def test_a_plain_text_file_is_read_like_the_paste_box_after_an_email_heading():
    read = identifiers_from_plain_text("email\nann@example.com, ben@example.com\ncarl\n")
    assert read.tokens == ["ann@example.com", "ben@example.com", "carl"]
    assert (read.column, read.rows) == (None, 2)


# --- enroll ----------------------------------------------------------------------


def test_enroll_known_user_by_username_and_email_any_case(course):
    alice = UserFactory(username="alice", email="Alice@Example.com")
    bob = UserFactory(username="bob")
    result = run(course, "alice\nBOB@example.com")
    assert outcomes(result) == {"alice": Outcome.ENROLLED, "BOB@example.com": Outcome.ENROLLED}
    assert set(Enrollment.objects.filter(course=course, is_active=True).values_list("user", flat=True)) == {alice.pk, bob.pk}
    assert Enrollment.objects.get(user=alice, course=course).mode == course.default_mode
    first = result.results[0]
    assert first.before.as_dict() == {"enrollment": False, "allowed": False, "user": True, "auto_enroll": False}
    assert first.after.as_dict() == {"enrollment": True, "allowed": False, "user": True, "auto_enroll": False}


def test_enroll_twice_reports_already_enrolled_and_changes_nothing(course):
    UserFactory(username="alice")
    run(course, "alice")
    audits = EnrollmentAudit.objects.count()
    result = run(course, "alice")
    assert outcomes(result) == {"alice": Outcome.ALREADY_ENROLLED}
    assert EnrollmentAudit.objects.count() == audits


def test_reenroll_reactivates_the_same_row_keeping_mode_and_created(course):
    enrollment = EnrollmentFactory(course=course, mode="verified", user=UserFactory(username="vera"))
    created = enrollment.created
    run(course, "vera", action="unenroll")
    enrollment.refresh_from_db()
    assert enrollment.is_active is False and enrollment.mode == "verified"
    result = run(course, "vera")
    assert outcomes(result) == {"vera": Outcome.REACTIVATED}
    again = Enrollment.objects.get(user__username="vera", course=course)
    assert (again.pk, again.mode, again.created, again.is_active) == (enrollment.pk, "verified", created, True)


def test_unknown_email_becomes_an_allowance_with_auto_enroll(course):
    result = run(course, "New.Person@Example.com", auto_enroll=True)
    assert outcomes(result) == {"New.Person@Example.com": Outcome.ALLOWED_AUTO}
    allowance = Allowance.objects.get(course=course)
    assert allowance.email == "New.Person@Example.com" and allowance.email_key == "new.person@example.com"
    assert allowance.auto_enroll is True
    assert result.results[0].after.as_dict() == {"enrollment": False, "allowed": True, "user": False, "auto_enroll": True}


def test_unknown_email_without_auto_enroll_must_enroll_themself(course):
    result = run(course, "x@example.com", auto_enroll=False)
    assert outcomes(result) == {"x@example.com": Outcome.ALLOWED}
    assert Allowance.objects.get(course=course).auto_enroll is False


def test_allowance_is_case_insensitive_and_unique_per_course(course):
    run(course, "Case@Example.com")
    run(course, "case@example.COM", auto_enroll=False)
    assert Allowance.objects.filter(course=course).count() == 1
    assert Allowance.objects.get(course=course).auto_enroll is False
    with pytest.raises(IntegrityError), transaction.atomic():
        Allowance.objects.create(course=course, email="CASE@example.com")


def test_invalid_identifiers_are_reported_not_fatal(course):
    UserFactory(username="real")
    result = run(course, "real, ghost, broken@, ok@example.com")
    assert outcomes(result) == {
        "real": Outcome.ENROLLED,
        "ghost": Outcome.NO_SUCH_USER,
        "broken@": Outcome.INVALID_EMAIL,
        "ok@example.com": Outcome.ALLOWED_AUTO,
    }
    assert [r.as_api_dict().get("invalidIdentifier") for r in result.results] == [None, True, True, None]


def test_duplicates_and_the_same_person_by_username_and_email_count_once(course):
    UserFactory(username="dora", email="dora@example.com")
    result = run(course, "dora dora DORA@example.com dora@EXAMPLE.com")
    assert len(result.results) == 2  # the username once, the email once
    assert Enrollment.objects.filter(course=course).count() == 1
    assert EnrollmentAudit.objects.filter(course=course).count() == 1


def test_the_same_person_by_username_and_by_email_counts_once_and_says_so(course):
    EnrollmentFactory(course=course, user=UserFactory(username="learner1", email="learner1@example.com"))
    UserFactory(username="kim", email="kim@example.com")
    result = run(course, "learner1 learner1@example.com KIM@example.com kim")
    assert outcomes(result) == {
        "learner1": Outcome.ALREADY_ENROLLED,
        "learner1@example.com": Outcome.DUPLICATE,
        "KIM@example.com": Outcome.ENROLLED,
        "kim": Outcome.DUPLICATE,
    }
    assert result.summary == {Outcome.ALREADY_ENROLLED: 1, Outcome.ENROLLED: 1, Outcome.DUPLICATE: 2}
    assert [r.note for r in result.results] == ["", "same person as learner1", "", "same person as KIM@example.com"]
    # The duplicate reports the state the first identifier left the person in.
    assert result.results[3].after.as_dict() == {"enrollment": True, "allowed": False, "user": True, "auto_enroll": False}
    assert EnrollmentAudit.objects.filter(course=course).count() == 1


def test_a_background_batch_counts_a_person_once_across_its_chunks(course, monkeypatch, django_capture_on_commit_callbacks):
    from enrollments.services import jobs

    monkeypatch.setattr(jobs, "BATCH_CHUNK", 2)
    UserFactory(username="dora", email="dora@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        job = batch_job_create(
            course=course, identifiers=["dora", "x@example.com", "new@example.com", "DORA@example.com", "X@example.com"],
            action="enroll", auto_enroll=True, email_students=False, actor=None,
        )
    job.refresh_from_db()
    assert job.status == BatchJob.Status.SUCCEEDED and job.total == job.done == 4  # X@example.com is x@example.com
    assert job.summary == {Outcome.ENROLLED: 1, Outcome.ALLOWED_AUTO: 2, Outcome.DUPLICATE: 1}
    body = job.results_file.open("rb").read().decode()
    assert "DORA@example.com,named twice,dora,dora@example.com" in body and "same person as dora" in body


def test_a_batch_run_in_the_request_is_recorded_with_its_results(course, course_staff):
    UserFactory(username="amy", email="amy@example.com")
    job = batch_job_run_inline(
        course=course, identifiers=["amy", "amy@example.com", "ghost"], action="enroll", auto_enroll=True,
        email_students=False, actor=course_staff, reason="Spring intake", input_note="pasted",
    )
    job.refresh_from_db()
    assert (job.status, job.ran_in_request, job.total, job.requester, job.reason) == (
        BatchJob.Status.SUCCEEDED, True, 3, course_staff, "Spring intake",
    )
    assert [(r["identifier"], r["outcome"], r["note"], r["error"]) for r in job.results] == [
        ("amy", Outcome.ENROLLED, "", False),
        ("amy@example.com", Outcome.DUPLICATE, "same person as amy", False),
        ("ghost", Outcome.NO_SUCH_USER, "", True),
    ]
    assert job.summary_items == [(Outcome.ENROLLED, 1), (Outcome.DUPLICATE, 1), (Outcome.NO_SUCH_USER, 1)]
    assert Enrollment.objects.filter(course=course, user__username="amy", is_active=True).exists()


def test_inactive_account_gets_an_allowance_not_an_enrollment(course):
    UserFactory(username="sleeper", email="sleeper@example.com", is_active=False)
    result = run(course, "sleeper@example.com")
    assert outcomes(result) == {"sleeper@example.com": Outcome.ALLOWED_AUTO}
    assert not Enrollment.objects.filter(course=course).exists()


def test_too_many_identifiers_is_an_error_and_changes_nothing(course, settings):
    settings.ENROLLMENT_MAX_IDENTIFIERS = 5
    with pytest.raises(TooManyIdentifiers):
        run(course, [f"p{i}@example.com" for i in range(6)])
    assert not Allowance.objects.exists()


# --- unenroll --------------------------------------------------------------------


def test_unenroll_keeps_the_row_removes_the_allowance_and_ignores_auto_enroll(course):
    EnrollmentFactory(course=course, user=UserFactory(username="ulla"))
    AllowanceFactory(course=course, email="Pending@example.com")
    result = run(course, "ulla pending@example.com nobody@example.com ghost", action="unenroll", auto_enroll=True)
    assert outcomes(result) == {
        "ulla": Outcome.UNENROLLED,
        "pending@example.com": Outcome.ALLOWANCE_REMOVED,
        "nobody@example.com": Outcome.NOT_ENROLLED,
        "ghost": Outcome.NO_SUCH_USER,
    }
    assert Enrollment.objects.get(user__username="ulla").is_active is False
    assert not Allowance.objects.filter(course=course).exists()
    assert result.results[0].after.as_dict() == {"enrollment": False, "allowed": False, "user": True, "auto_enroll": False}


# --- audit -----------------------------------------------------------------------


def test_every_change_is_audited_once_with_actor_source_and_reason(course, course_admin):
    UserFactory(username="amy")
    run(course, "amy new@example.com", actor=course_admin, reason="Spring intake", source=Source.BATCH)
    run(course, "amy", action="unenroll", actor=course_admin)
    rows = list(EnrollmentAudit.objects.filter(course=course, actor=course_admin).order_by("id"))
    assert [(r.identifier, r.state_before, r.state_after) for r in rows] == [
        ("amy", State.NONE, State.ENROLLED),
        ("new@example.com", State.NONE, State.ALLOWED_AUTO),
        ("amy", State.ENROLLED, State.UNENROLLED),
    ]
    assert rows[0].reason == "Spring intake" and rows[0].source == Source.BATCH


def test_audit_entries_cannot_be_changed_or_deleted(course):
    UserFactory(username="amy")
    run(course, "amy")
    entry = EnrollmentAudit.objects.get()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        EnrollmentAudit.objects.all().delete()
    with pytest.raises(PermissionError):
        EnrollmentAudit.objects.update(reason="x")
    with pytest.raises(PermissionError):
        entry.save()


def test_thousand_identifiers_half_new_give_one_audit_row_per_change(course):
    users = UserFactory.create_batch(500)
    identifiers = [u.username for u in users] + [f"fresh{i}@example.com" for i in range(500)]
    run(course, identifiers)
    assert EnrollmentAudit.objects.filter(course=course).count() == 1000


# --- notifications ---------------------------------------------------------------


def test_emails_are_written_to_the_outbox_and_sent_after_commit(course, django_capture_on_commit_callbacks):
    UserFactory(username="erin", email="erin@example.com")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run(course, "erin invitee@example.com", email_students=True)
    assert len(callbacks) == 1
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 2
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert course.display_name in by_recipient["erin@example.com"].subject
    invite = by_recipient["invitee@example.com"]
    assert course.display_name in invite.subject
    assert "invitee@example.com" in invite.body and "/accounts/signup/" in invite.body


def test_unenroll_email_tells_people_they_were_removed(course, django_capture_on_commit_callbacks):
    EnrollmentFactory(course=course, user=UserFactory(username="ula", email="ula@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        run(course, "ula", action="unenroll", email_students=True)
    assert len(mail.outbox) == 1
    assert "unenrolled" in mail.outbox[0].subject.lower()


def test_no_email_without_email_students(course, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run(course, "quiet@example.com", email_students=False)
    assert callbacks == [] and mail.outbox == [] and not Notification.objects.exists()


def test_rolled_back_batch_sends_nothing_and_queues_nothing(course, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            run(course, "rollback@example.com", email_students=True)
            raise RuntimeError("boom")
    assert callbacks == [] and mail.outbox == []
    assert not Notification.objects.exists() and not Allowance.objects.exists()


def test_sending_twice_sends_each_message_once(course):
    run(course, "one@example.com two@example.com", email_students=True)
    Notification.objects.update(status=Notification.Status.PENDING)
    mail.outbox.clear()
    notifications_send()
    notifications_send()
    assert sorted(m.to[0] for m in mail.outbox) == ["one@example.com", "two@example.com"]


def test_a_failing_backend_leaves_unsent_messages_for_the_retry(course, settings, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    emails = [f"p{i}@example.com" for i in range(10)]
    run(course, emails, email_students=True)  # eager task sends them now
    Notification.objects.update(status=Notification.Status.PENDING)
    mail.outbox.clear()
    original = EmailBackend.send_messages
    calls = {"n": 0}

    def flaky(self, messages):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("SMTP connection dropped")
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    with pytest.raises(OSError):
        notifications_send()
    assert len(mail.outbox) == 3
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 3
    notifications_send()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(emails)


@pytest.mark.parametrize(
    ("interruption", "in_flight_went_out"),
    [(SystemExit, False), (KeyboardInterrupt, True)],
    ids=["before-the-4th-went-out", "after-the-4th-went-out"],
)
def test_an_interrupted_chunk_repeats_at_most_the_message_in_flight(course, monkeypatch, interruption, in_flight_went_out):
    """A worker stopped after the 3rd message of a chunk of 10: the rerun sends
    the other 7 and none of the 3 again; the 4th, in flight when it stopped, is
    the one message that may go out twice."""
    from django.core.mail.backends.locmem import EmailBackend

    emails = [f"p{i}@example.com" for i in range(10)]
    run(course, emails, email_students=True)
    Notification.objects.update(status=Notification.Status.PENDING, sent_at=None)
    mail.outbox.clear()
    original = EmailBackend.send_messages
    calls = {"n": 0}

    def interrupted(self, messages):
        calls["n"] += 1
        if calls["n"] == 4:
            if in_flight_went_out:
                original(self, messages)
            raise interruption()
        return original(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", interrupted)
    with pytest.raises(interruption):
        notifications_send()
    first_run = [m.to[0] for m in mail.outbox]
    assert first_run == emails[: 4 if in_flight_went_out else 3]
    assert set(Notification.objects.filter(status=Notification.Status.SENT).values_list("recipient", flat=True)) == set(emails[:3])

    assert notifications_send() == 7
    rerun = [m.to[0] for m in mail.outbox[len(first_run):]]
    assert sorted(rerun) == sorted(emails[3:])
    assert not set(rerun) & set(emails[:3])
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 10


def test_a_worker_killed_mid_chunk_leaves_the_messages_it_sent_marked(course, monkeypatch):
    """A worker killed outright (no except clause runs): every message it sent
    is already marked, so the stale sweep gives back only the rest."""
    from datetime import timedelta

    from django.core.mail.backends.locmem import EmailBackend
    from django.db.models import QuerySet
    from django.utils import timezone

    from enrollments.services import notifications_requeue_stale

    emails = [f"k{i}@example.com" for i in range(10)]
    run(course, emails, email_students=True)
    Notification.objects.update(status=Notification.Status.PENDING, sent_at=None)
    mail.outbox.clear()
    original = EmailBackend.send_messages
    calls = {"n": 0}

    class Killed(BaseException):
        """Stands for SIGKILL: the chunk's rows stay as the database saw them then."""

    def killed(self, messages):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed
        return original(self, messages)

    # What SIGKILL leaves behind: nothing gives the unsent rows back.
    real_update = QuerySet.update

    def update_unless_giving_back(qs, **kwargs):
        if kwargs.get("status") == Notification.Status.PENDING:
            return 0
        return real_update(qs, **kwargs)

    monkeypatch.setattr(EmailBackend, "send_messages", killed)
    monkeypatch.setattr(QuerySet, "update", update_unless_giving_back)
    with pytest.raises(Killed):
        notifications_send()
    monkeypatch.undo()
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 3
    assert Notification.objects.filter(status=Notification.Status.SENDING).count() == 7

    Notification.objects.filter(status=Notification.Status.SENDING).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert notifications_requeue_stale() == 7
    assert notifications_send() == 7
    assert sorted(m.to[0] for m in mail.outbox) == sorted(emails)


def test_each_message_costs_one_update(course):
    """Email is bound by the SMTP round trip: one UPDATE per message (what lets
    a crash repeat at most one) plus a few per chunk."""

    def queries_to_send(n):
        Notification.objects.all().delete()
        run(course, [f"q{n}-{i}@example.com" for i in range(n)], email_students=True)
        Notification.objects.update(status=Notification.Status.PENDING, sent_at=None)
        with CaptureQueriesContext(connection) as ctx:
            assert notifications_send() == n
        return len(ctx.captured_queries)

    assert queries_to_send(20) - queries_to_send(10) == 10


def test_course_name_cannot_inject_headers(django_capture_on_commit_callbacks):
    course = CourseFactory(display_name="Intro\r\nBcc: x@evil.org")
    with django_capture_on_commit_callbacks(execute=True):
        run(course, "target@example.com", email_students=True)
    message = mail.outbox[0].message()
    assert "\n" not in message["Subject"] and message["Bcc"] is None


# --- query counts ----------------------------------------------------------------


def _count_queries(course, identifiers, action="enroll"):
    with CaptureQueriesContext(connection) as ctx:
        run(course, identifiers, action=action, email_students=True)
    return len(ctx.captured_queries)


@pytest.mark.postgresql  # SQLite splits bulk statements by its parameter limit
@pytest.mark.parametrize("action", ["enroll", "unenroll"])
def test_query_count_does_not_grow_with_the_number_of_identifiers(action):
    counts = []
    for size in (10, 2000):
        course = CourseFactory()
        users = UserFactory.create_batch(size // 2, verified=False)
        identifiers = [u.username for u in users] + [f"new{size}-{i}@example.com" for i in range(size // 2)]
        if action == "unenroll":
            run(course, identifiers)
        counts.append(_count_queries(course, identifiers, action=action))
    assert counts[0] == counts[1]
    assert counts[0] <= 16, counts


# --- activation ------------------------------------------------------------------


def test_activation_consumes_every_auto_enroll_allowance_any_case():
    c1, c2, c3 = CourseFactory(), CourseFactory(), CourseFactory()
    AllowanceFactory(course=c1, email="Newbie@Example.com", auto_enroll=True)
    AllowanceFactory(course=c2, email="newbie@example.com", auto_enroll=True)
    AllowanceFactory(course=c3, email="NEWBIE@example.com", auto_enroll=False)
    user = UserFactory(username="newbie", email="newbie@example.com")
    allowance_consume_for(user=user)
    assert set(Enrollment.objects.filter(user=user, is_active=True).values_list("course", flat=True)) == {c1.pk, c2.pk}
    audit = EnrollmentAudit.objects.filter(user=user)
    assert audit.count() == 2 and set(audit.values_list("source", flat=True)) == {Source.ACTIVATION}
    assert Allowance.objects.filter(used_at__isnull=False).count() == 2
    allowance_consume_for(user=user)  # idempotent
    assert EnrollmentAudit.objects.filter(user=user).count() == 2


def test_confirming_the_email_address_enrolls_through_allauth(client, course):
    from allauth.account.models import EmailAddress

    run(course, "signup@example.com", auto_enroll=True)
    client.post("/accounts/signup/", {"email": "SignUp@example.com", "username": "signup", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"})
    address = EmailAddress.objects.get(email__iexact="signup@example.com")
    assert not Enrollment.objects.filter(user=address.user).exists()
    from allauth.account.models import EmailConfirmationHMAC

    key = EmailConfirmationHMAC(address).key
    response = client.post(f"/accounts/confirm-email/{key}/")
    assert response.status_code == 302
    assert Enrollment.objects.filter(user=address.user, course=course, is_active=True).exists()


# --- self-enrollment -------------------------------------------------------------


def test_self_enroll_within_the_window(course, learner):
    enrollment = enrollment_self_enroll(user=learner, course=course)
    assert enrollment.is_active and enrollment.source == Source.SELF
    assert EnrollmentAudit.objects.get(user=learner).source == Source.SELF


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"invitation_only": True}, "invitation only"),
        ({"self_enrollment": False}, "cannot enroll themselves"),
        ({"enrollment_end": "past"}, "closed"),
        ({"enrollment_start": "future"}, "opens"),
        ({"enrollment_key": "sesame"}, "enrollment key"),
        ({"max_enrollments": 1}, "full"),
    ],
)
def test_self_enroll_is_refused_politely(course, learner, changes, message):
    from django.utils import timezone

    for field, value in changes.items():
        if value == "past":
            value = timezone.now() - timezone.timedelta(days=1)
        elif value == "future":
            value = timezone.now() + timezone.timedelta(days=1)
        setattr(course, field, value)
    course.save()
    if "max_enrollments" in changes:
        EnrollmentFactory(course=course)
    with pytest.raises(SelfEnrollmentRefused, match=message):
        enrollment_self_enroll(user=learner, course=course)
    assert not Enrollment.objects.filter(user=learner).exists()


def test_allowance_lets_people_in_after_the_end_date_and_into_invitation_only(course, learner):
    from django.utils import timezone

    course.invitation_only = True
    course.enrollment_end = timezone.now() - timezone.timedelta(days=3)
    course.enrollment_key = "secret"
    course.save()
    AllowanceFactory(course=course, email=learner.email.upper(), auto_enroll=False)
    assert enrollment_self_enroll(user=learner, course=course).is_active


def test_right_enrollment_key_lets_in(course, learner):
    course.enrollment_key = "sesame"
    course.save()
    assert enrollment_self_enroll(user=learner, course=course, enrollment_key=" sesame ").is_active


def test_self_unenroll_keeps_data(course, learner):
    enrollment = enrollment_self_enroll(user=learner, course=course)
    enrollment_self_unenroll(user=learner, course=course)
    enrollment.refresh_from_db()
    assert enrollment.is_active is False
    assert EnrollmentAudit.objects.filter(user=learner, state_after=State.UNENROLLED).exists()
