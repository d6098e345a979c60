"""Races on PostgreSQL: real threads, each with its own connection, started together by a Barrier."""

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.urls import reverse

import codes.views
from codes.models import EnrollmentCode, Redemption
from codes.services import CodeUsedUp, code_redeem
from enrollments.models import Enrollment, EnrollmentAudit

from ..factories import UserFactory
from ..races import fire_together, logged_in_clients, slowed
from .factories import EnrollmentCodeFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgresql,  # row locks under real concurrency need PostgreSQL
]


def race(users, code_text):
    """Every user redeems at once; returns each thread's outcome (a result or the exception)."""
    return race_pairs([(u, code_text) for u in users])


def race_pairs(pairs):
    """Every (user, code) pair is redeemed at once; returns each thread's outcome."""
    barrier = threading.Barrier(len(pairs))
    outcomes = [None] * len(pairs)

    def work(i, user, code_text):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = code_redeem(code=code_text, user=user)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, u, c)) for i, (u, c) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("left", [10, 3])
def test_fifty_learners_on_a_code_with_n_uses_left(course, left):
    code = EnrollmentCodeFactory(courses=[course], max_uses=left + 2, uses=2)
    users = UserFactory.create_batch(50)
    outcomes = race(users, code.code.lower())
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == left
    assert len(losers) == 50 - left and all(isinstance(o, CodeUsedUp) for o in losers), {type(o) for o in losers}
    code.refresh_from_db()
    assert code.uses == left + 2
    assert Redemption.objects.filter(code=code).count() == left
    assert Enrollment.objects.filter(course=course, is_active=True).count() == left
    assert EnrollmentAudit.objects.filter(course=course).count() == left


def test_double_submit_by_one_learner_gives_one_redemption(course):
    code = EnrollmentCodeFactory(courses=[course], max_uses=1)
    learner = UserFactory()
    outcomes = race([learner, learner], code.code)
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert sorted(o.already_redeemed for o in outcomes) == [False, True]
    code.refresh_from_db()
    assert code.uses == 1
    assert Redemption.objects.count() == 1 and EnrollmentAudit.objects.count() == 1
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True).count() == 1


def test_redemption_waits_on_the_code_row_lock(course):
    """Proof that redemption takes the row lock: while another transaction holds
    it, a redemption with a short lock_timeout fails with SQLSTATE 55P03."""
    code = EnrollmentCodeFactory(courses=[course], max_uses=5)
    learner = UserFactory()
    errors = []

    def other():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '200ms'")
                code_redeem(code=code.code, user=learner)
        except OperationalError as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        EnrollmentCode.objects.select_for_update().get(pk=code.pk)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert len(errors) == 1 and getattr(errors[0].__cause__, "sqlstate", None) == "55P03"
    assert not Redemption.objects.exists()


# --- the failure limit under concurrent wrong codes ---------------------------------------------


def test_thirty_wrong_codes_at_once_are_evaluated_at_most_ten_times(course, settings, monkeypatch):
    """Counted before tried: of 30 simultaneous wrong codes by one learner against
    a limit of 10, no more than 10 reach the redemption service (each held there
    long enough that all 30 are in flight together); the rest are answered 429."""
    settings.CODE_REDEEM_RATE_PER_USER = "10/1d"  # a day: the race cannot straddle a window edge
    settings.CODE_REDEEM_RATE_PER_IP = "100/1d"
    evaluated: list = []
    monkeypatch.setattr(codes.views, "code_redeem", slowed(codes.views.code_redeem, evaluated, "code"))
    clients = logged_in_clients(UserFactory(), 30)
    statuses = fire_together(clients, lambda i, client: client.post(reverse("redeem_code"), {"code": f"WRONG-{i:04d}-XXXX"}).status_code)
    assert len(evaluated) <= 10, len(evaluated)
    assert sorted(statuses) == [400] * len(evaluated) + [429] * (30 - len(evaluated)), statuses
    assert not Redemption.objects.exists() and not Enrollment.objects.exists()


@pytest.mark.parametrize("codes", ["one unlimited code", "a code each"])
def test_twenty_learners_fill_exactly_the_four_seats_left(course, codes):
    """One code's row lock already queues its redeemers; learners with codes of
    their own meet only at the course row lock."""
    from codes.services import CourseFull

    from ..factories import EnrollmentFactory

    EnrollmentFactory.create_batch(6, course=course)
    course.max_enrollments = 10
    course.save()
    users = UserFactory.create_batch(20)
    if codes == "one unlimited code":
        texts = [EnrollmentCodeFactory(courses=[course], max_uses=None).code] * 20
    else:
        texts = [EnrollmentCodeFactory(courses=[course]).code for _ in users]
    outcomes = race_pairs(list(zip(users, texts, strict=True)))
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(losers) == 16 and all(isinstance(o, CourseFull) for o in losers), {type(o) for o in losers}
    assert Enrollment.objects.filter(course=course, is_active=True).count() == 10
    assert Redemption.objects.count() == 4
    assert sum(EnrollmentCode.objects.values_list("uses", flat=True)) == 4
