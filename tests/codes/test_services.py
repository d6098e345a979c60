import datetime
import random
import re

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from codes import services
from codes.models import CodeBatch, EnrollmentCode, Redemption, Status
from codes.services import (
    ALPHABET,
    CodeDeactivated,
    CodeExpired,
    CodeUsedUp,
    CourseFull,
    UnknownCode,
    code_batch_generate,
    code_deactivate,
    code_redeem,
    normalize_code,
)
from enrollments.models import Enrollment, EnrollmentAudit, Source, State
from organisations.models import GroupMembership
from organisations.services import group_add_members

from ..factories import CourseFactory, EnrollmentFactory, UserFactory
from .factories import EnrollmentCodeFactory, GroupFactory, RedemptionFactory

pytestmark = pytest.mark.django_db

CODE_RE = re.compile(rf"^(?:(?P<prefix>[A-Z0-9-]+)-)?[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


# --- generation ---------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 7, 500])
def test_generate_makes_count_unique_codes(course, course_staff, count):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=count, prefix="")
    codes = list(batch.codes.values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == count == batch.count
    assert all(CODE_RE.match(c) and CODE_RE.match(c)["prefix"] is None for c in codes)
    assert list(batch.courses.all()) == [course]
    assert batch.created_by == course_staff


def test_generate_with_prefix_and_options(course, course_staff):
    expires = timezone.localdate() + datetime.timedelta(days=3)
    batch = code_batch_generate(actor=course_staff, courses=[course], count=5, prefix="spring-2026", expires_on=expires, max_uses=25)
    assert batch.prefix == "SPRING-2026"
    for code in batch.codes.all():
        assert code.code.startswith("SPRING-2026-") and CODE_RE.match(code.code)
        assert code.normalized == normalize_code(code.code) == code.code.replace("-", "")
        assert (code.max_uses, code.uses, code.expires_on) == (25, 0, expires)
        assert code.status == Status.ACTIVE


def test_generate_unlimited_and_groups_only(course_staff):
    group = GroupFactory()
    batch = code_batch_generate(actor=course_staff, groups=[group], count=3, max_uses=None)
    assert list(batch.groups.all()) == [group] and not batch.courses.exists()
    assert set(batch.codes.values_list("max_uses", flat=True)) == {None}


def test_codes_are_unique_across_batches(course, course_staff):
    for _ in range(4):
        code_batch_generate(actor=course_staff, courses=[course], count=500)
    assert EnrollmentCode.objects.values("normalized").distinct().count() == 2000


@pytest.mark.postgresql  # SQLite splits bulk inserts by its parameter limit
def test_codes_inserted_in_one_statement(course, course_staff):
    with CaptureQueriesContext(connection) as ctx:
        code_batch_generate(actor=course_staff, courses=[course], count=500, prefix="ONE")
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "codes_enrollmentcode"')]
    assert len(inserts) == 1


def test_generation_retries_on_collision(course, course_staff, monkeypatch):
    existing = EnrollmentCodeFactory(courses=[course], code="AAAA-BBBB-CCCC")
    parts = iter(["AAAABBBBCCCC"])
    real = services.random_part
    monkeypatch.setattr(services, "random_part", lambda: next(parts, None) or real())
    batch = code_batch_generate(actor=course_staff, courses=[course], count=3)
    assert batch.codes.count() == 3
    assert existing.normalized not in set(batch.codes.values_list("normalized", flat=True))


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"count": 0}, "count", "between 1 and 500"),
        ({"count": 501}, "count", "between 1 and 500"),
        ({"prefix": "A" * 21}, "prefix", "at most 20 characters"),
        ({"prefix": "AB C"}, "prefix", "letters A–Z, digits and dashes"),
        ({"prefix": "A_B"}, "prefix", "letters A–Z, digits and dashes"),
        ({"prefix": "=CMD"}, "prefix", "letters A–Z, digits and dashes"),
        ({"prefix": "ÄRGER"}, "prefix", "letters A–Z, digits and dashes"),
        ({"courses": [], "groups": []}, "courses", "at least one course or group"),
        ({"max_uses": 0}, "max_uses", "at least 1"),
        ({"expires_on": datetime.date(2000, 1, 1)}, "expires_on", "today or later"),
    ],
)
def test_generation_limits_give_clear_errors_and_create_nothing(course, course_staff, options, field, message):
    kwargs = {"actor": course_staff, "courses": [course], "count": 5, "prefix": "", **options}
    with pytest.raises(ValidationError) as excinfo:
        code_batch_generate(**kwargs)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert not CodeBatch.objects.exists() and not EnrollmentCode.objects.exists()


def test_prefix_of_twenty_characters_is_accepted(course, course_staff):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=1, prefix="A" * 20)
    assert batch.codes.get().code.startswith("A" * 20 + "-")


def test_generator_pattern_entropy_and_independence_from_random(course, course_staff):
    random.seed(1234)
    first = {services.random_part() for _ in range(10_000)}
    random.seed(1234)
    second = {services.random_part() for _ in range(10_000)}
    assert len(first) == 10_000 and not first & second
    assert all(len(p) == 12 and set(p) <= set(ALPHABET) for p in first)
    assert set("".join(first)) == set(ALPHABET)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (" abcd-efgh-jkmn ", "ABCDEFGHJKMN"),
        ("abcd efgh\tjkmn\n", "ABCDEFGHJKMN"),
        ("ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ", "ABCDEFGHJKMN"),  # full-width, as some keyboards type
        ("spring-2026–abcd\u200befgh", "SPRING2026ABCDEFGH"),  # en dash and a zero-width space
    ],
)
def test_normalize_code(typed, expected):
    assert normalize_code(typed) == expected


# --- status -----------------------------------------------------------------------------

def _status_in_sql(code, now=None):
    return EnrollmentCode.objects.with_status(now=now).get(pk=code.pk).status_value


def _site_time(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=timezone.get_default_timezone())


@pytest.mark.parametrize("site_tz", ["UTC", "Europe/Amsterdam", "America/New_York"])
def test_a_code_works_to_the_end_of_its_expiry_day_in_the_site_time_zone(settings, course, site_tz):
    settings.TIME_ZONE = site_tz
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(_site_time(2026, 12, 31, 23, 59, 59), tick=False):
        assert code.status == _status_in_sql(code) == Status.ACTIVE
        assert EnrollmentCode.objects.filter_status(Status.ACTIVE).filter(pk=code.pk).exists()
        assert not EnrollmentCode.objects.filter_status(Status.EXPIRED).filter(pk=code.pk).exists()
    with time_machine.travel(_site_time(2027, 1, 1, 0, 0, 0), tick=False):
        assert code.status == _status_in_sql(code) == Status.EXPIRED
        assert EnrollmentCode.objects.filter_status(Status.EXPIRED).filter(pk=code.pk).exists()
        assert not EnrollmentCode.objects.filter_status(Status.ACTIVE).filter(pk=code.pk).exists()


def test_an_active_time_zone_does_not_move_the_expiry(settings, course):
    # A request may activate another time zone; the day still ends in the site's.
    settings.TIME_ZONE = "UTC"
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(datetime.datetime(2027, 1, 1, 0, 30, tzinfo=datetime.UTC), tick=False), timezone.override("America/New_York"):
        assert code.status == _status_in_sql(code) == Status.EXPIRED


def test_redeeming_the_day_after_the_expiry_names_the_day(settings, course, learner):
    settings.TIME_ZONE = "Europe/Amsterdam"
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(_site_time(2026, 12, 31, 23, 59, 59), tick=False):
        code_redeem(code=code.code, user=learner)
    late = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(_site_time(2027, 1, 1, 0, 0, 0), tick=False), pytest.raises(CodeExpired) as excinfo:
        code_redeem(code=late.code, user=UserFactory())
    assert str(excinfo.value) == "This code expired at the end of 31 Dec 2026 (Europe/Amsterdam)."


def test_generation_accepts_today_and_refuses_yesterday_in_the_site_time_zone(settings, course, course_staff):
    settings.TIME_ZONE = "Pacific/Auckland"
    # 11:00 UTC on 31 Dec is already 1 Jan 00:00 in Auckland (UTC+13 in summer).
    with time_machine.travel(datetime.datetime(2026, 12, 31, 11, 0, tzinfo=datetime.UTC), tick=False):
        with pytest.raises(ValidationError) as excinfo:
            code_batch_generate(actor=course_staff, courses=[course], count=1, expires_on=datetime.date(2026, 12, 31))
        assert "today or later" in " ".join(excinfo.value.message_dict["expires_on"])
        batch = code_batch_generate(actor=course_staff, courses=[course], count=1, expires_on=datetime.date(2027, 1, 1))
    assert batch.codes.get().expires_on == datetime.date(2027, 1, 1)


def test_status_at_the_last_use(course):
    code = EnrollmentCodeFactory(courses=[course], max_uses=3, uses=2)
    assert code.status == _status_in_sql(code) == Status.ACTIVE
    EnrollmentCode.objects.filter(pk=code.pk).update(uses=3)
    code.refresh_from_db()
    assert code.status == _status_in_sql(code) == Status.USED
    assert EnrollmentCode.objects.filter_status(Status.USED).get() == code


def test_status_precedence(course):
    past = timezone.localdate() - datetime.timedelta(days=1)
    both = EnrollmentCodeFactory(courses=[course], expires_on=past, deactivated_at=timezone.now())
    expired_and_used = EnrollmentCodeFactory(courses=[course], expires_on=past, max_uses=1, uses=1)
    unlimited = EnrollmentCodeFactory(courses=[course], max_uses=None, uses=10_000)
    assert both.status == _status_in_sql(both) == Status.DEACTIVATED
    assert expired_and_used.status == _status_in_sql(expired_and_used) == Status.EXPIRED
    assert unlimited.status == _status_in_sql(unlimited) == Status.ACTIVE
    for status in Status.values:
        expected = {c.pk for c in (both, expired_and_used, unlimited) if c.status == status}
        assert set(EnrollmentCode.objects.filter_status(status).values_list("pk", flat=True)) == expected


def test_database_refuses_uses_past_the_limit(course):
    code = EnrollmentCodeFactory(courses=[course], max_uses=1, uses=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentCode.objects.filter(pk=code.pk).update(uses=2)


def test_database_refuses_a_second_redemption_by_one_user(course, learner):
    redemption = RedemptionFactory(code=EnrollmentCodeFactory(courses=[course], max_uses=None), user=learner)
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.create(code=redemption.code, user=learner)


# --- redemption ------------------------------------------------------------------------

@pytest.fixture
def targets(course):
    second = CourseFactory(display_name="Second course")
    via_group = CourseFactory(display_name="Group course")
    group = GroupFactory(name="Cohort A", courses=[via_group])
    return {"courses": [course, second], "group": group, "group_course": via_group}


def test_redeem_enrolls_in_every_course_and_group(targets, learner):
    code = EnrollmentCodeFactory(courses=targets["courses"], groups=[targets["group"]], max_uses=5)
    typed = "  " + code.code.lower().replace("-", " - ", 1) + " "
    result = code_redeem(code=typed, user=learner)

    all_courses = [*targets["courses"], targets["group_course"]]
    assert sorted(c.pk for c in result.courses) == sorted(c.pk for c in all_courses)
    assert result.groups == [targets["group"]] and not result.already_redeemed
    assert set(Enrollment.objects.filter(user=learner, is_active=True).values_list("course_id", flat=True)) == {c.pk for c in all_courses}
    assert GroupMembership.objects.filter(user=learner, group=targets["group"], source=Source.CODE).exists()
    audits = EnrollmentAudit.objects.filter(user=learner)
    assert audits.count() == 3
    assert {(a.source, a.actor_id, a.state_before, a.state_after) for a in audits} == {(Source.CODE, learner.pk, State.NONE, State.ENROLLED)}
    assert all(code.code in a.reason for a in audits)
    code.refresh_from_db()
    assert code.uses == 1 and Redemption.objects.filter(code=code, user=learner).count() == 1


def test_redeem_normalizes_what_the_learner_typed(course, learner):
    EnrollmentCodeFactory(courses=[course], code="ABCD-EFGH-JKMN")
    code_redeem(code=" abcd-efgh-jkmn ", user=learner)
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True).exists()


def test_redeem_twice_is_one_redemption(course, learner):
    code = EnrollmentCodeFactory(courses=[course], max_uses=1)
    code_redeem(code=code.code, user=learner)
    again = code_redeem(code=code.code, user=learner)
    assert again.already_redeemed and again.courses == [course]
    code.refresh_from_db()
    assert code.uses == 1
    assert Redemption.objects.count() == 1 and EnrollmentAudit.objects.count() == 1


def test_redeem_reactivates_an_unenrolled_learner_keeping_the_row(course, learner):
    old = EnrollmentFactory(user=learner, course=course, is_active=False, mode="verified")
    code = EnrollmentCodeFactory(courses=[course])
    code_redeem(code=code.code, user=learner)
    enrollment = Enrollment.objects.get(user=learner, course=course)
    assert (enrollment.pk, enrollment.is_active, enrollment.mode) == (old.pk, True, "verified")


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda c: None, UnknownCode),
        (lambda c: EnrollmentCodeFactory(courses=[c], expires_on=timezone.localdate() - datetime.timedelta(days=1)), CodeExpired),
        (lambda c: EnrollmentCodeFactory(courses=[c], max_uses=2, uses=2), CodeUsedUp),
        (lambda c: EnrollmentCodeFactory(courses=[c], deactivated_at=timezone.now()), CodeDeactivated),
    ],
)
def test_redeem_failures_change_nothing(course, learner, make, error):
    code = make(course)
    typed = code.code if code else "NOPE-NOPE-NOPE"
    with pytest.raises(error) as excinfo:
        code_redeem(code=typed, user=learner)
    assert str(excinfo.value)
    assert not Enrollment.objects.exists() and not Redemption.objects.exists() and not EnrollmentAudit.objects.exists()
    if code:
        uses = code.uses
        code.refresh_from_db()
        assert code.uses == uses


def full_course(course, *, cap=4, active=11):
    """A course holding ``active`` learners for a cap of ``cap`` (capped after the fact, as a course team may)."""
    EnrollmentFactory.create_batch(active, course=course)
    course.max_enrollments = cap
    course.save()
    return course


def test_redeeming_into_a_full_course_is_refused_and_changes_nothing(course, other_course, learner):
    full_course(course)
    code = EnrollmentCodeFactory(courses=[course, other_course], max_uses=None, uses=3)
    with pytest.raises(CourseFull, match=r"^Enrollment 101 is full\.$"):
        code_redeem(code=code.code, user=learner)
    code.refresh_from_db()
    assert code.uses == 3 and not Redemption.objects.exists()
    assert not Enrollment.objects.filter(user=learner).exists()
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 11
    assert not EnrollmentAudit.objects.filter(user=learner).exists()


def test_the_last_seat_can_be_redeemed_and_then_the_course_is_full(course, learner):
    full_course(course, cap=4, active=3)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    code_redeem(code=code.code, user=learner)
    with pytest.raises(CourseFull):
        code_redeem(code=code.code, user=UserFactory())
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 4


def test_a_learner_already_enrolled_takes_no_new_seat(course, learner):
    EnrollmentFactory(course=course, user=learner)
    full_course(course, cap=4, active=3)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    assert not code_redeem(code=code.code, user=learner).already_redeemed
    assert Redemption.objects.filter(user=learner).count() == 1


def test_a_full_course_reached_through_a_group_refuses_too(course, learner):
    full_course(course)
    group = GroupFactory(courses=[course])
    code = EnrollmentCodeFactory(groups=[group], max_uses=None)
    with pytest.raises(CourseFull, match="Enrollment 101 is full"):
        code_redeem(code=code.code, user=learner)
    assert not GroupMembership.objects.filter(user=learner).exists() and not Redemption.objects.exists()


def test_a_batch_that_may_exceed_the_cap_enrolls_into_a_full_course(course, learner):
    full_course(course)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None, may_exceed_cap=True)
    code_redeem(code=code.code, user=learner)
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 12
    assert Redemption.objects.filter(user=learner).count() == 1


def test_generate_records_whether_the_batch_may_exceed_the_cap(course, course_staff):
    assert not code_batch_generate(actor=course_staff, courses=[course], count=1).may_exceed_cap
    assert code_batch_generate(actor=course_staff, courses=[course], count=1, may_exceed_cap=True).may_exceed_cap


@pytest.mark.parametrize("typed", ["", "   ", "-" * 5, "X" * 500])
def test_redeem_rejects_empty_and_oversize_input(learner, typed):
    with pytest.raises(UnknownCode):
        code_redeem(code=typed, user=learner)


def test_deactivate_is_immediate_and_final(course, course_staff, learner):
    code = EnrollmentCodeFactory(courses=[course])
    assert code_deactivate(code=code, actor=course_staff) is True
    assert code_deactivate(code=code, actor=course_staff) is False
    code.refresh_from_db()
    assert code.status == Status.DEACTIVATED and code.deactivated_by == course_staff
    with pytest.raises(CodeDeactivated):
        code_redeem(code=code.code, user=learner)


# --- groups --------------------------------------------------------------------------------

def test_group_add_members_enrolls_and_is_idempotent(course, other_course, platform_admin):
    group = GroupFactory(courses=[course, other_course])
    users = UserFactory.create_batch(3)
    added = group_add_members(group=group, users=users, actor=platform_admin, source=Source.ADMIN)
    assert {u.pk for u in added} == {u.pk for u in users}
    assert Enrollment.objects.filter(is_active=True).count() == 6
    assert EnrollmentAudit.objects.filter(source=Source.ADMIN).count() == 6
    joined = dict(GroupMembership.objects.values_list("user_id", "joined"))

    again = group_add_members(group=group, users=[*users, UserFactory()], actor=platform_admin, source=Source.ADMIN)
    assert len(again) == 1
    assert GroupMembership.objects.count() == 4 and Enrollment.objects.count() == 8
    assert EnrollmentAudit.objects.count() == 8
    assert {pk: j for pk, j in GroupMembership.objects.values_list("user_id", "joined") if pk in joined} == joined
