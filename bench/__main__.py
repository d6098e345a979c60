"""Enrollment benchmark: the batch service against hand-written SQL and a
one-identifier-at-a-time ORM loop, measured in one run on PostgreSQL.

    make bench            (or: DATABASE_URL=postgres://... python -m bench)

It creates (and drops first) its own database, ``<name>_bench``, so it never
touches real data. Printed figures are seconds, SQL queries and ratios; no
figure is asserted anywhere (tests pin query counts instead)."""

import os
import statistics
import time
import tracemalloc
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database, settle  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", "10000"))
LOOP_SIZE = int(os.environ.get("BENCH_LOOP_SIZE", "1000"))
BIG = int(os.environ.get("BENCH_BIG", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _setup_database(*, keep: bool):
    """A fresh ``<name>_bench``, or with ``keep`` ``<name>_bench_1m``, made
    once and reused by later runs (its million users take minutes to build)."""
    if not keep:
        return fresh_database("bench", memory_broker=True)
    import environ
    import psycopg

    url = os.environ["DATABASE_URL"]
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_bench_1m"
    admin = psycopg.connect(host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], password=config["PASSWORD"],
                            dbname="postgres", autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from enrollment_site.celery import app

    call_command("migrate", verbosity=0)
    app.conf.update(task_always_eager=False, broker_url="memory://")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return name


def _pad_users(total):
    """Fill the user table up to ``total`` accounts (set-based, once); returns the count."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM accounts_user")
        (count,) = cur.fetchone()
        if count < total:
            cur.execute(
                """
                INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, email_key, email_key_clash,
                                           username_skeleton, is_staff, is_active, date_joined, language, date_added)
                SELECT '!', false, 'filler' || n, 'Filler', 'Person' || n, 'filler' || n || '@example.net',
                       'filler' || n || '@example.net', false, translate('filler' || n, '10', 'lo'), false, true, now(), '',
                       current_date
                FROM generate_series(1, %s) AS n
                """,
                [total - count],
            )
            cur.execute("ANALYZE accounts_user")
            count = total
    return count


def _make_users(prefix, count):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    password = make_password("bench")
    for start in range(0, count, 10_000):
        # Ignoring conflicts: a reused database (--scale 1m) has them from an earlier run.
        User.objects.bulk_create(
            [User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com", password=password) for i in range(start, min(count, start + 10_000))],
            ignore_conflicts=True,
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
    """One identifier at a time, the way a classic per-identifier view works.
    Users are looked up as the product does (a username by ``lower(username)``,
    an email by its email key), on the indexes the batch uses too: the loop
    pays per identifier, not per row of the user table."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models.functions import Lower

    from enrollment_site.lib.emails import email_key
    from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, State
    from enrollments.notifications import MessageBuilder

    User = get_user_model()
    op = uuid.uuid4()
    with Measure() as m, transaction.atomic():
        notifications = MessageBuilder(course)
        for identifier in identifiers:
            if "@" in identifier:
                user = User.objects.filter(email_key=email_key(identifier), is_active=True).order_by("pk").first()
            else:
                user = User.objects.annotate(k=Lower("username")).filter(k=identifier.lower(), is_active=True).order_by("pk").first()
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


FLOOR_USERS = """
    SELECT DISTINCT ON (lower(username)) id, username, email, email_key,
           coalesce(nullif(btrim(first_name || ' ' || last_name), ''), username) AS name
    FROM accounts_user WHERE lower(username) = ANY(%(names)s) AND is_active ORDER BY lower(username), id
"""
FLOOR_COLUMNS = {
    "audit": "enrollments_enrollmentaudit (created, course_id, user_id, identifier, state_before, state_after, source, reason, operation_id, "
             "mode_before, mode_after, cohort_before, cohort_after)",
    "outbox": "enrollments_notification (operation_id, kind, recipient, recipient_key, subject, body, name, auto_enroll, reason, "
              "course_id, status, attempts, created, message_id, error)",
}


def floor_run(course, usernames, emails, action):
    """The floor: one statement per kind of row that does the batch's reads
    and writes in SQL alone. It matches the identifiers to active accounts
    (on the ``lower(username)`` and email-key indexes), locks the existing
    enrollments and allowances in key order, writes the enrollments or
    allowances only where they change, and from what the write returned
    records each state before in the audit and writes the outbox rows (with
    their subjects and greetings). No per-identifier results come back: no
    program doing this work can go faster than this."""
    from django.db import connection, transaction

    from enrollments.notifications import MessageBuilder

    op = uuid.uuid4()
    notifications = MessageBuilder(course)
    params = {
        "names": [u.lower() for u in usernames], "emails": emails, "keys": [e.lower() for e in emails], "course": course.pk,
        "op": op, "mode": course.default_mode,
    }
    with Measure() as m, transaction.atomic(), connection.cursor() as cur:
        if action == "enroll":
            params["subject_enrolled"] = notifications.enrolled(email="", operation_id=op)["subject"]
            params["subject_allowed"] = notifications.allowed(email="", auto_enroll=True, operation_id=op)["subject"]
            cur.execute(f"""
                WITH u AS ({FLOOR_USERS}),
                locked AS (
                    SELECT a.email_key FROM enrollments_allowance a
                    WHERE a.course_id = %(course)s AND a.email_key IN (SELECT email_key FROM u) ORDER BY a.email_key FOR UPDATE
                ),
                before AS (
                    SELECT e.user_id, e.is_active FROM enrollments_enrollment e
                    WHERE e.course_id = %(course)s AND e.user_id IN (SELECT id FROM u) ORDER BY e.user_id FOR UPDATE
                ),
                written AS (
                    INSERT INTO enrollments_enrollment (user_id, course_id, is_active, mode, source, created, updated)
                    SELECT u.id, %(course)s, true, %(mode)s, 'batch', now(), now()
                    FROM u LEFT JOIN before b ON b.user_id = u.id
                    WHERE b.is_active IS NOT TRUE AND (SELECT count(*) FROM locked) >= 0 ORDER BY u.id
                    ON CONFLICT (user_id, course_id) DO UPDATE SET is_active = true, updated = now()
                    WHERE NOT enrollments_enrollment.is_active
                    RETURNING user_id, xmax = 0 AS inserted
                ),
                audited AS (
                    INSERT INTO {FLOOR_COLUMNS["audit"]}
                    SELECT now(), %(course)s, u.id, u.username, CASE WHEN w.inserted THEN 'none' ELSE 'unenrolled' END,
                           'enrolled', 'batch', '', %(op)s, '', '', '', ''
                    FROM written w JOIN u ON u.id = w.user_id
                )
                INSERT INTO {FLOOR_COLUMNS["outbox"]}
                SELECT %(op)s, 'enrolled', u.email, u.email_key, %(subject_enrolled)s, '', u.name, false, '', %(course)s,
                       'pending', 0, now(), '', ''
                FROM written w JOIN u ON u.id = w.user_id
            """, params)  # noqa: S608 (column lists are constants)
            cur.execute(f"""
                WITH m AS (SELECT DISTINCT ON (k) e, k FROM unnest(%(emails)s::text[], %(keys)s::text[]) AS t(e, k)),
                new AS (
                    SELECT m.e, m.k FROM m
                    WHERE NOT EXISTS (SELECT 1 FROM accounts_user a WHERE a.email_key = m.k AND a.is_active)
                ),
                before AS (
                    SELECT a.email_key, a.auto_enroll FROM enrollments_allowance a
                    WHERE a.course_id = %(course)s AND a.email_key = ANY(%(keys)s) ORDER BY a.email_key FOR UPDATE
                ),
                written AS (
                    INSERT INTO enrollments_allowance (course_id, email, email_key, auto_enroll, created, created_by_id)
                    SELECT %(course)s, new.e, new.k, true, now(), NULL
                    FROM new LEFT JOIN before b ON b.email_key = new.k WHERE b.auto_enroll IS NOT TRUE ORDER BY new.k
                    ON CONFLICT (course_id, email_key) DO UPDATE SET auto_enroll = excluded.auto_enroll
                    WHERE enrollments_allowance.auto_enroll IS DISTINCT FROM excluded.auto_enroll
                    RETURNING email, email_key, xmax = 0 AS inserted
                ),
                audited AS (
                    INSERT INTO {FLOOR_COLUMNS["audit"]}
                    SELECT now(), %(course)s, NULL, w.email, CASE WHEN w.inserted THEN 'none' ELSE 'allowed' END,
                           'allowed_auto', 'batch', '', %(op)s, '', '', '', ''
                    FROM written w
                )
                INSERT INTO {FLOOR_COLUMNS["outbox"]}
                SELECT %(op)s, 'allowed', w.email, w.email_key, %(subject_allowed)s, '', '', true, '', %(course)s,
                       'pending', 0, now(), '', ''
                FROM written w
            """, params)  # noqa: S608 (column lists are constants)
        else:
            params["subject_unenrolled"] = notifications.unenrolled(email="", operation_id=op)["subject"]
            params["subject_removed"] = notifications.allowance_removed(email="", operation_id=op)["subject"]
            cur.execute(f"""
                WITH u AS ({FLOOR_USERS}),
                locked AS (
                    SELECT a.email_key FROM enrollments_allowance a
                    WHERE a.course_id = %(course)s AND a.email_key IN (SELECT email_key FROM u) ORDER BY a.email_key FOR UPDATE
                ),
                before AS (
                    SELECT e.id, e.user_id FROM enrollments_enrollment e
                    WHERE e.course_id = %(course)s AND e.user_id IN (SELECT id FROM u) AND e.is_active
                    ORDER BY e.user_id FOR UPDATE
                ),
                written AS (
                    UPDATE enrollments_enrollment e SET is_active = false, updated = now()
                    FROM before b WHERE e.id = b.id AND (SELECT count(*) FROM locked) >= 0
                    RETURNING e.user_id, e.access_from, e.access_until
                ),
                audited AS (
                    -- With the period each enrollment ended (kept on its row), as every unenroll records it.
                    INSERT INTO {FLOOR_COLUMNS["audit"][:-1]}, access_from_before, access_until_before, access_from_after,
                                                            access_until_after)
                    SELECT now(), %(course)s, u.id, u.username, 'enrolled', 'unenrolled', 'batch', '', %(op)s, '', '', '', '',
                           w.access_from, w.access_until, w.access_from, w.access_until
                    FROM written w JOIN u ON u.id = w.user_id
                )
                INSERT INTO {FLOOR_COLUMNS["outbox"]}
                SELECT %(op)s, 'unenrolled', u.email, u.email_key, %(subject_unenrolled)s, '', u.name, false, '', %(course)s,
                       'pending', 0, now(), '', ''
                FROM written w JOIN u ON u.id = w.user_id
            """, params)  # noqa: S608 (column lists are constants)
            cur.execute(f"""
                WITH m AS (SELECT DISTINCT ON (k) e, k FROM unnest(%(emails)s::text[], %(keys)s::text[]) AS t(e, k)),
                new AS (
                    SELECT m.e, m.k FROM m
                    WHERE NOT EXISTS (SELECT 1 FROM accounts_user a WHERE a.email_key = m.k AND a.is_active)
                ),
                before AS (
                    SELECT a.id, a.email_key, a.auto_enroll FROM enrollments_allowance a
                    WHERE a.course_id = %(course)s AND a.email_key IN (SELECT k FROM new) ORDER BY a.email_key FOR UPDATE
                ),
                written AS (
                    DELETE FROM enrollments_allowance a USING before b WHERE a.id = b.id RETURNING a.email, a.email_key, b.auto_enroll
                ),
                audited AS (
                    INSERT INTO {FLOOR_COLUMNS["audit"]}
                    SELECT now(), %(course)s, NULL, w.email, CASE WHEN w.auto_enroll THEN 'allowed_auto' ELSE 'allowed' END,
                           'none', 'batch', '', %(op)s, '', '', '', ''
                    FROM written w
                )
                INSERT INTO {FLOOR_COLUMNS["outbox"]}
                SELECT %(op)s, 'allowance_removed', w.email, w.email_key, %(subject_removed)s, '', '', false, '', %(course)s,
                       'pending', 0, now(), '', ''
                FROM written w
            """, params)  # noqa: S608 (column lists are constants)
    return m


def _admin_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="benchadmin", defaults={"email": "benchadmin@example.com", "is_staff": True})
    client = Client()
    client.force_login(admin)
    return client


def page_run(client, course, identifiers, action):
    """The Membership page's way: the pasted list is previewed (timed apart),
    then Confirm applies it and the results page is shown: the confirm POST
    and the GET of its redirect are the request measured."""
    from django.urls import reverse

    data = {"identifiers": "\n".join(identifiers), "action": action, "auto_enroll": "on", "email_students": "on", "reason": ""}
    with Measure() as preview:
        response = client.post(reverse("batch_enrollment", args=[course.key]), data)
        assert response.status_code == 302, response.status_code
        token = response.url.rstrip("/").rsplit("/", 1)[1]
        assert client.get(response.url).status_code == 200
    with Measure() as m:
        response = client.post(reverse("batch_confirm", args=[course.key, token]), follow=True)
    assert response.status_code == 200 and b"Results" in response.content or b"results" in response.content, response.status_code
    return m, preview


def api_run(client, course, identifiers, action):
    """The bulk enroll API call (one course), its JSON answer included."""
    import json

    body = {"action": action, "identifiers": identifiers, "courses": [course.key], "auto_enroll": True, "email_students": True}
    with Measure() as m:
        response = client.post("/api/bulk_enroll/v1/bulk_enroll/", json.dumps(body), content_type="application/json")
        response.content  # noqa: B018 (the body is rendered as part of the call)
    assert response.status_code == 200, (response.status_code, response.content[:300])
    return m


def _median(values):
    return statistics.median(values)


def _report(label, seconds, queries, extra=""):
    return f"  {label:<44} {seconds:9.3f} s  {queries:>7} queries{extra}"


def _round(action, usernames, emails, identifiers, loop_ids, client, run, turn=0):
    """One round of every method on fresh courses; seconds and queries by method."""
    names = ("service", "page", "api", "sql", "floor", "loop")
    courses = {name: _course(f"{action.upper()}{name.upper()}{run}") for name in names}
    if action == "unenroll":
        # Start from the enrolled state each method would undo.
        for name, course in courses.items():
            service_run(course, loop_ids if name == "loop" else identifiers, "enroll")
    methods = [
        ("service", lambda: service_run(courses["service"], identifiers, action)),
        ("page", lambda: page_run(client, courses["page"], identifiers, action)),
        ("api", lambda: api_run(client, courses["api"], identifiers, action)),
        ("sql", lambda: sql_run(courses["sql"], usernames, emails, action)),
        ("floor", lambda: floor_run(courses["floor"], usernames, emails, action)),
    ]
    out = {}
    # The methods take turns (each round starts with another), and each starts
    # with nothing left for autovacuum and fresh statistics (``settle``).
    for name, method in methods[turn % len(methods):] + methods[:turn % len(methods)]:
        settle()
        if name == "page":
            out["page"], out["preview"] = method()
        else:
            out[name] = method()
    settle()
    out["loop"] = loop_run(courses["loop"], loop_ids, action)
    written = {name: _written(courses[name]) for name in ("service", "page", "api", "sql", "floor")}
    # Every method must have written the same rows, or its time compares nothing.
    assert len(set(written.values())) == 1, written
    return out


def _written(course):
    """Active enrollments, allowances, audit entries and outbox rows of a course."""
    from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification

    return (Enrollment.objects.filter(course=course, is_active=True).count(), Allowance.objects.filter(course=course).count(),
            EnrollmentAudit.objects.filter(course=course).count(), Notification.objects.filter(course=course).count())


def _parse_args():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["small", "1m"], default="small",
                        help="1m: a user table of 1,000,000 accounts, kept in <name>_bench_1m and reused by later runs")
    return parser.parse_args()


def main():
    args = _parse_args()
    total_users = 1_000_000 if args.scale == "1m" else 0
    name = _setup_database(keep=args.scale == "1m")
    half = SIZE // 2
    usernames = _make_users("benchuser", half)
    padded = _pad_users(total_users)
    print(f"Enrollment benchmark on PostgreSQL (database {name}, {padded:,} users); {SIZE:,} identifiers, half existing users, "
          f"half new emails, notifications on; medians of {ROUNDS} rounds, every method in each round")
    emails = [f"new{i}@example.org" for i in range(half)]
    identifiers = usernames + emails
    loop_half = LOOP_SIZE // 2
    loop_ids = usernames[:loop_half] + [f"loopnew{i}@example.org" for i in range(loop_half)]
    scale = SIZE / LOOP_SIZE
    client = _admin_client()
    run_id = uuid.uuid4().hex[:6]

    # Warm up once (URL resolver, templates, query compilation), so that every
    # method is measured in its steady state rather than paying the first-call costs.
    _round("enroll", usernames[:2], ["warm@example.org"], usernames[:2] + ["warm@example.org"],
           usernames[2:4] + ["warm3@example.org"], client, f"W{run_id}")

    for action in ("enroll", "unenroll"):
        rounds = [_round(action, usernames, emails, identifiers, loop_ids, client, f"{run_id}R{r}", r) for r in range(ROUNDS)]
        med = {k: _median([r[k].seconds for r in rounds]) for k in rounds[0]}
        queries = {k: rounds[0][k].queries for k in rounds[0]}
        loop_scaled = med["loop"] * scale
        print(f"\n{action} {SIZE:,} identifiers")
        print(_report("service (enrollment_batch_update)", med["service"], queries["service"]))
        print(_report("Membership page: Confirm + results page", med["page"], queries["page"],
                      f"   (its preview before: {med['preview']:.3f} s, {queries['preview']} queries)"))
        print(_report("bulk enroll API call (JSON answer)", med["api"], queries["api"]))
        print(_report("hand-written SQL (same rows, no reads)", med["sql"], queries["sql"]))
        print(_report("floor (same writes and reads, SQL alone)", med["floor"], queries["floor"]))
        print(_report("one-at-a-time ORM loop", loop_scaled, int(queries["loop"] * scale),
                      f"   (measured on {LOOP_SIZE:,}: {med['loop']:.3f} s, scaled x{scale:g})"))
        print(f"  service / SQL   = {med['service'] / med['sql']:6.2f}x   service / floor = {med['service'] / med['floor']:6.2f}x"
              "   (goal: within 1.5x of the floor)")
        print(f"  page / floor    = {med['page'] / med['floor']:6.2f}x   API / floor     = {med['api'] / med['floor']:6.2f}x"
              "   (goal: the whole request within 2x of the floor)")
        print(f"  loop / service  = {loop_scaled / med['service']:6.1f}x")

    print(f"\nbackground path: {BIG:,} identifiers (half existing users, half new emails) as a batch job")
    big_ids = _make_users("bigbench", BIG // 2) + [f"bignew{i}@example.org" for i in range(BIG // 2)]
    # Timed without tracemalloc (which slows Python down about 2.4x); memory is measured in a second run.
    seconds, job = _big_job(big_ids, f"BIG{run_id}", trace=False)
    print(f"  status {job.status}, {job.done:,}/{job.total:,} done in {seconds:.2f} s")
    print(f"  outcomes: {job.summary}")
    _, job = _big_job(big_ids, f"BIGMEM{run_id}", trace=True)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  memory, in a second run on another course: peak Python allocations {job.peak / 1e6:.1f} MB (tracemalloc), "
          f"process max RSS {rss:.0f} MB")


def _big_job(identifiers, key, *, trace):
    from enrollments.models import BatchJob
    from enrollments.services import batch_job_create, batch_job_run

    course = _course(key)
    job = batch_job_create(course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=True, actor=None)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    batch_job_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    job = BatchJob.objects.get(pk=job.pk)
    job.peak = peak
    return seconds, job


if __name__ == "__main__":
    main()
