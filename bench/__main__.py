"""Enrollment benchmark: the batch service against hand-written SQL and a
one-identifier-at-a-time ORM loop, measured in one run on PostgreSQL.

    make bench            (or: DATABASE_URL=postgres://... python -m bench)

It creates (and drops first) its own database, ``<name>_bench``, so it never
touches real data. Printed figures are seconds, SQL queries and ratios; no
figure is asserted anywhere (tests pin query counts instead)."""

import os
import time
import tracemalloc
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", "10000"))
LOOP_SIZE = int(os.environ.get("BENCH_LOOP_SIZE", "1000"))
BIG = int(os.environ.get("BENCH_BIG", "100000"))


def _setup_database():
    return fresh_database("bench", memory_broker=True)


def _make_users(prefix, count):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    password = make_password("bench")
    for start in range(0, count, 10_000):
        User.objects.bulk_create(
            [User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password=password) for i in range(start, min(count, start + 10_000))]
        )
    return [f"{prefix}{i}" for i in range(count)]


_course = bench_course


def service_run(course, identifiers, action):
    from enrollments.services import enrollment_batch_update

    with Measure() as m:
        enrollment_batch_update(course=course, identifiers=identifiers, action=action, auto_enroll=True, email_students=True, actor=None)
    return m


def sql_run(course, usernames, emails, action):
    """The same rows written by hand-written SQL: enrollments, allowances, audit and outbox."""
    from django.db import connection, transaction

    from enrollments.notifications import MessageBuilder

    op = uuid.uuid4()
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        notifications = MessageBuilder(course)
        # Message texts are rendered as the service does (it is part of the same work).
        if action == "enroll":
            users = [(u, f"{u}@example.com") for u in usernames]
            note_rows = [notifications.enrolled(email=e, operation_id=op, name=u) for u, e in users]
            note_rows += [notifications.allowed(email=e, auto_enroll=True, operation_id=op) for e in emails]
            cur.execute(
                """
                WITH u AS (SELECT id FROM accounts_user WHERE lower(username) = ANY(%s) AND is_active)
                INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                SELECT u.id, %s, true, 'audit', 'batch', now(), now() FROM u ORDER BY u.id
                ON CONFLICT (user_id, course_id) DO UPDATE SET is_active = true, updated = now()
                """,
                [[u.lower() for u in usernames], course.pk],
            )
            cur.execute(
                """
                INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created, created_by_id)
                SELECT %s, e, lower(e), true, now(), NULL FROM unnest(%s::text[]) AS e
                ON CONFLICT (course_id, email_key) DO UPDATE SET auto_enroll = EXCLUDED.auto_enroll
                """,
                [course.pk, emails],
            )
            cur.execute(
                """
                INSERT INTO enrollments_enrollmentaudit (created, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id,
                                                          mode_before, mode_after, cohort_before, cohort_after)
                SELECT now(), %s, u.id, u.username, 'none', 'enrolled', 'batch', '', %s, '', '', '', '' FROM accounts_user u WHERE lower(u.username) = ANY(%s)
                UNION ALL
                SELECT now(), %s, NULL, e, 'none', 'allowed_auto', 'batch', '', %s, '', '', '', '' FROM unnest(%s::text[]) AS e
                """,
                [course.pk, op, [u.lower() for u in usernames], course.pk, op, emails],
            )
        else:
            users = [(u, f"{u}@example.com") for u in usernames]
            note_rows = [notifications.unenrolled(email=e, operation_id=op) for _, e in users]
            note_rows += [notifications.allowance_removed(email=e, operation_id=op) for e in emails]
            cur.execute(
                """
                UPDATE enrollments_enrollment e SET is_active = false, updated = now()
                FROM accounts_user u WHERE e.user_id = u.id AND e.course_id = %s AND lower(u.username) = ANY(%s) AND e.is_active
                """,
                [course.pk, [u.lower() for u in usernames]],
            )
            cur.execute("DELETE FROM enrollments_allowance WHERE course_id = %s AND email_key = ANY(%s)", [course.pk, [e.lower() for e in emails]])
            cur.execute(
                """
                INSERT INTO enrollments_enrollmentaudit (created, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id,
                                                          mode_before, mode_after, cohort_before, cohort_after)
                SELECT now(), %s, u.id, u.username, 'enrolled', 'unenrolled', 'batch', '', %s, '', '', '', '' FROM accounts_user u WHERE lower(u.username) = ANY(%s)
                UNION ALL
                SELECT now(), %s, NULL, e, 'allowed_auto', 'none', 'batch', '', %s, '', '', '', '' FROM unnest(%s::text[]) AS e
                """,
                [course.pk, op, [u.lower() for u in usernames], course.pk, op, emails],
            )
        cur.execute(
            """
            INSERT INTO enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll,
                                                  reason, course_id, status, attempts, created, message_id, error)
            SELECT %s, k, r, lower(r), s, '', n, a, '', %s, 'pending', 0, now(), '', ''
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[]) AS t(k, r, s, n, a)
            """,
            [op, course.pk, [n["kind"] for n in note_rows], [n["recipient"] for n in note_rows], [n["subject"] for n in note_rows],
             [n["name"] for n in note_rows], [n["auto_enroll"] for n in note_rows]],
        )
    return m


def loop_run(course, identifiers, action):
    """One identifier at a time, the way a classic per-identifier view works."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models import Q

    from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, State
    from enrollments.notifications import MessageBuilder

    User = get_user_model()
    op = uuid.uuid4()
    with Measure() as m, transaction.atomic():
        notifications = MessageBuilder(course)
        for identifier in identifiers:
            user = User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier)).first()
            if action == "enroll":
                if user is not None:
                    enrollment, created = Enrollment.objects.get_or_create(user=user, course=course, defaults={"mode": "audit"})
                    if not created and not enrollment.is_active:
                        enrollment.is_active = True
                        enrollment.save()
                    EnrollmentAudit.objects.create(course=course, user=user, identifier=identifier, state_before=State.NONE, state_after=State.ENROLLED, source="batch")
                    note = notifications.enrolled(email=user.email, operation_id=op, name=user.username)
                else:
                    Allowance.objects.update_or_create(course=course, email_key=identifier.lower(), defaults={"email": identifier, "auto_enroll": True})
                    EnrollmentAudit.objects.create(course=course, identifier=identifier, state_before=State.NONE, state_after=State.ALLOWED_AUTO, source="batch")
                    note = notifications.allowed(email=identifier, auto_enroll=True, operation_id=op)
            else:
                if user is not None:
                    enrollment = Enrollment.objects.filter(user=user, course=course).first()
                    if enrollment is not None:
                        enrollment.is_active = False
                        enrollment.save()
                    EnrollmentAudit.objects.create(course=course, user=user, identifier=identifier, state_before=State.ENROLLED, state_after=State.UNENROLLED, source="batch")
                    note = notifications.unenrolled(email=user.email, operation_id=op)
                else:
                    Allowance.objects.filter(course=course, email_key=identifier.lower()).delete()
                    EnrollmentAudit.objects.create(course=course, identifier=identifier, state_before=State.ALLOWED_AUTO, state_after=State.NONE, source="batch")
                    note = notifications.allowance_removed(email=identifier, operation_id=op)
            Notification.objects.create(**note)
    return m


def _row(label, m, scale=1.0):
    per_id = m.seconds * scale
    return f"  {label:<38} {per_id:9.3f} s  {m.queries:>7} queries"


def main():
    name = _setup_database()
    print(f"Enrollment benchmark on PostgreSQL (database {name}); {SIZE:,} identifiers, half existing users, half new emails, notifications on")
    half = SIZE // 2
    usernames = _make_users("benchuser", half)
    emails = [f"new{i}@example.org" for i in range(half)]
    identifiers = usernames + emails
    loop_half = LOOP_SIZE // 2
    loop_ids = usernames[:loop_half] + [f"loopnew{i}@example.org" for i in range(loop_half)]
    scale = SIZE / LOOP_SIZE

    # Warm up once (URL resolver, templates, query compilation), so that every
    # method is measured in its steady state rather than paying the first-call costs.
    warm = _course("WARMUP")
    service_run(warm, usernames[:2] + ["warm@example.org"], "enroll")
    sql_run(warm, usernames[2:4], ["warm2@example.org"], "enroll")
    loop_run(warm, usernames[4:6] + ["warm3@example.org"], "enroll")

    for action in ("enroll", "unenroll"):
        svc_course, sql_course, loop_course = (_course(f"{action.upper()}{k}") for k in ("SVC", "SQL", "LOOP"))
        if action == "unenroll":
            # Start from the enrolled state each method would undo.
            for c in (svc_course, sql_course):
                service_run(c, identifiers, "enroll")
            service_run(loop_course, loop_ids, "enroll")
        svc = service_run(svc_course, identifiers, action)
        sql = sql_run(sql_course, usernames, emails, action)
        loop = loop_run(loop_course, loop_ids, action)
        loop_scaled = loop.seconds * scale
        print(f"\n{action} {SIZE:,} identifiers")
        print(_row("service (enrollment_batch_update)", svc))
        print(_row("hand-written SQL (same rows)", sql))
        print(f"  {'one-at-a-time ORM loop':<38} {loop_scaled:9.3f} s  {int(loop.queries * scale):>7} queries"
              f"   (measured on {LOOP_SIZE:,}: {loop.seconds:.3f} s, scaled x{scale:g})")
        print(f"  service / SQL  = {svc.seconds / sql.seconds:6.2f}x   (goal: within 3x)")
        print(f"  loop / service = {loop_scaled / svc.seconds:6.1f}x   (goal: at least 50x)")

    print(f"\nbackground path: {BIG:,} identifiers (half existing users, half new emails) as a batch job")
    from enrollments.models import BatchJob
    from enrollments.services import batch_job_create, batch_job_run

    big_users = _make_users("bigbench", BIG // 2)
    big_ids = big_users + [f"bignew{i}@example.org" for i in range(BIG // 2)]
    course = _course("BIG")
    job = batch_job_create(course=course, identifiers=big_ids, action="enroll", auto_enroll=True, email_students=True, actor=None)
    tracemalloc.start()
    started = time.perf_counter()
    batch_job_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    job = BatchJob.objects.get(pk=job.pk)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  status {job.status}, {job.done:,}/{job.total:,} done in {seconds:.2f} s; "
          f"peak Python allocations {peak / 1e6:.1f} MB (tracemalloc), process max RSS {rss:.0f} MB")
    print(f"  outcomes: {job.summary}")


if __name__ == "__main__":
    main()
