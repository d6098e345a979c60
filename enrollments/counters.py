"""The database triggers that keep ``EnrollmentCount`` and ``EnrollmentDayCount``
in step with ``Enrollment``, and the set-based recount that checks them.

Triggers rather than calls in each service: every way a row of
``enrollments_enrollment`` changes (the ORM, bulk upserts, raw SQL, COPY, a
path not written yet) moves the counters in the same transaction, and none
can forget to. On PostgreSQL they are statement-level triggers over the
statement's transition tables: one aggregated ``INSERT … ON CONFLICT DO
UPDATE`` per counter table per statement, whatever the number of rows, with
rows in (course, mode) and (course, day) order, so concurrent writers lock
counter rows in one order. On SQLite (one writer at a time) they are
row-level. A deleted row only decrements rows that exist: the course's own
counters may already be gone with the course (cascade), and a new counter
row pointing at a deleted course would fail its foreign key at commit.

``EnrollmentDayCount.ended`` is an event count, unlike the rest: per course,
the enrollments that went from active to inactive on a day (the day of the
statement, not the day the enrollment was made), by any path (the expiry of a
period too). A later reactivation does not take an end back, and deleting a
row does not either (undo of an enrollment deletes the row it made: the made
counts drop, and nothing had ended). It cannot be recounted from the
enrollment rows, so the check recounts it from the audit trail (changes from
``enrolled`` to ``unenrolled``, by the day of their audit row): an end made
outside the product's services (raw SQL) is counted by the trigger but has no
audit row, and shows as drift.

Days are in the site's time zone (``TIME_ZONE``) as the triggers were
installed with it; ``install_sql`` is run by the migration and again by
``enrollment_counts_check --fix``, which then recounts (after a change of
``TIME_ZONE``, say). Only TRUNCATE is not seen: recount after one.

On SQLite, a migration that rebuilds ``enrollments_enrollment`` (most field
alterations and every new constraint there: Django copies the table into a new
one) drops its triggers with the old table: such a migration must end with
``migrations.RunPython`` of ``counters.reinstall`` (as the triggers are at that
point of the chain: 0020 passes ``ended=False``), and
``tests/enrollments/test_counters_installed.py`` checks that they are there
after every migration.
"""

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

ENROLLMENT = "enrollments_enrollment"
COUNT = "enrollments_enrollmentcount"
DAY = "enrollments_enrollmentdaycount"
AUDIT = "enrollments_enrollmentaudit"

_PG_DELTAS = {
    # (course_id, mode, is_active, created, sign) per changed row
    "INSERT": "SELECT course_id, mode, is_active, created, 1 AS s FROM new_rows",
    "DELETE": "SELECT course_id, mode, is_active, created, -1 AS s FROM old_rows",
    # Only rows whose counted columns changed: a touch of ``updated`` or a
    # cohort move locks no counter row.
    "UPDATE": (
        "SELECT n.course_id, n.mode, n.is_active, n.created, 1 AS s FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE (o.course_id, o.mode, o.is_active, o.created) IS DISTINCT FROM (n.course_id, n.mode, n.is_active, n.created)"
        " UNION ALL "
        "SELECT o.course_id, o.mode, o.is_active, o.created, -1 AS s FROM new_rows n JOIN old_rows o ON o.id = n.id"
        " WHERE (o.course_id, o.mode, o.is_active, o.created) IS DISTINCT FROM (n.course_id, n.mode, n.is_active, n.created)"
    ),
}
_PG_TRANSITIONS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The enrollments that ended in an UPDATE statement, in the course they left, on the statement's day.
# (Not "new" as a name in these functions: PL/pgSQL takes it for the trigger's NEW record.)
_PG_ENDED = (
    "SELECT o.course_id, (statement_timestamp() AT TIME ZONE {tz})::date, 0, 0, 1"
    " FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.is_active AND NOT n.is_active"
)


def _pg_function(op: str, tz: str, ended: bool = True) -> str:
    deltas = _PG_DELTAS[op]
    day = f"(created AT TIME ZONE {_quote(tz)})::date"
    if op == "DELETE":
        # Decrement existing rows only (see the module docstring); UPDATE … FROM
        # locks in no fixed order, but only deletes (of a user or a course) come here.
        writes = f"""
        UPDATE {COUNT} AS c SET active = c.active - d.active, inactive = c.inactive - d.inactive
        FROM (SELECT course_id, mode, count(*) FILTER (WHERE is_active) AS active, count(*) FILTER (WHERE NOT is_active) AS inactive
              FROM ({deltas}) x GROUP BY course_id, mode) d
        WHERE c.course_id = d.course_id AND c.mode = d.mode;
        UPDATE {DAY} AS c SET new = c.new - d.new, active = c.active - d.active
        FROM (SELECT course_id, {day} AS day, count(*) AS new, count(*) FILTER (WHERE is_active) AS active
              FROM ({deltas}) x GROUP BY 1, 2) d
        WHERE c.course_id = d.course_id AND c.day = d.day;"""
    else:
        writes = f"""
        INSERT INTO {COUNT} AS c (course_id, mode, active, inactive)
        SELECT course_id, mode, COALESCE(sum(s) FILTER (WHERE is_active), 0), COALESCE(sum(s) FILTER (WHERE NOT is_active), 0)
        FROM ({deltas}) x GROUP BY course_id, mode
        HAVING COALESCE(sum(s) FILTER (WHERE is_active), 0) <> 0 OR COALESCE(sum(s) FILTER (WHERE NOT is_active), 0) <> 0
        ORDER BY course_id, mode
        ON CONFLICT (course_id, mode) DO UPDATE SET active = c.active + EXCLUDED.active, inactive = c.inactive + EXCLUDED.inactive;
        INSERT INTO {DAY} AS c (course_id, day, new, active{", ended" if ended else ""})
        SELECT course_id, day, sum(made), sum(kept){", sum(ends)" if ended else ""}
        FROM (SELECT course_id, {day} AS day, s AS made, CASE WHEN is_active THEN s ELSE 0 END AS kept, 0 AS ends FROM ({deltas}) x
              {"UNION ALL " + _PG_ENDED.format(tz=_quote(tz)) if ended and op == "UPDATE" else ""}) y
        GROUP BY 1, 2
        HAVING sum(made) <> 0 OR sum(kept) <> 0 OR sum(ends) <> 0
        ORDER BY 1, 2
        ON CONFLICT (course_id, day) DO UPDATE SET new = c.new + EXCLUDED.new, active = c.active + EXCLUDED.active{", ended = c.ended + EXCLUDED.ended" if ended else ""};"""
    # Each statement through EXECUTE, planned afresh on every call: PL/pgSQL
    # would otherwise cache a statement's plan from its first call in the
    # session, sized for that call's transition tables. A first call of none
    # (an upsert that updated nothing) left nested loops over the tables, and a
    # later unenroll of 5,000 rows took seconds (25 million comparisons per join).
    executed = "\n".join(f"EXECUTE $q${statement.strip()}$q$;" for statement in writes.split(";") if statement.strip())
    return f"""
    CREATE OR REPLACE FUNCTION enrollment_counts_{op.lower()}() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        {executed}
        RETURN NULL;
    END
    $body$"""


def _sqlite_triggers(tz: str, ended: bool = True) -> list[str]:
    def day(row: str) -> str:
        # Django registers django_datetime_cast_date on each of its SQLite connections (TruncDate uses it).
        return f"django_datetime_cast_date({row}.created, {_quote(tz)}, 'UTC')"

    def add(row: str) -> str:
        return f"""
        INSERT INTO {COUNT} (course_id, mode, active, inactive) VALUES ({row}.course_id, {row}.mode, {row}.is_active, 1 - {row}.is_active)
        ON CONFLICT (course_id, mode) DO UPDATE SET active = active + excluded.active, inactive = inactive + excluded.inactive;
        INSERT INTO {DAY} (course_id, day, new, active) VALUES ({row}.course_id, {day(row)}, 1, {row}.is_active)
        ON CONFLICT (course_id, day) DO UPDATE SET new = new + excluded.new, active = active + excluded.active;"""

    def remove(row: str) -> str:
        return f"""
        UPDATE {COUNT} SET active = active - {row}.is_active, inactive = inactive - (1 - {row}.is_active)
        WHERE course_id = {row}.course_id AND mode = {row}.mode;
        UPDATE {DAY} SET new = new - 1, active = active - {row}.is_active
        WHERE course_id = {row}.course_id AND day = {day(row)};"""

    # An end, on the day of the statement (SQLite's 'now' is fixed within one).
    end = f"""
        INSERT INTO {DAY} (course_id, day, new, active, ended)
        SELECT OLD.course_id, django_datetime_cast_date(datetime('now'), {_quote(tz)}, 'UTC'), 0, 0, 1 WHERE OLD.is_active AND NOT NEW.is_active
        ON CONFLICT (course_id, day) DO UPDATE SET ended = ended + 1;""" if ended else ""

    changed = "OLD.course_id IS NOT NEW.course_id OR OLD.mode IS NOT NEW.mode OR OLD.is_active IS NOT NEW.is_active OR OLD.created IS NOT NEW.created"
    return [
        f"CREATE TRIGGER enrollment_counts_insert AFTER INSERT ON {ENROLLMENT} BEGIN {add('NEW')} END",
        f"CREATE TRIGGER enrollment_counts_update AFTER UPDATE ON {ENROLLMENT} WHEN {changed} BEGIN {remove('OLD')} {add('NEW')} {end} END",
        f"CREATE TRIGGER enrollment_counts_delete AFTER DELETE ON {ENROLLMENT} BEGIN {remove('OLD')} END",
    ]


def install_sql(vendor: str, tz: str, ended: bool = True) -> list[str]:
    """The statements that (re)create the triggers, days in time zone ``tz``;
    without ``ended`` as migration 0019 made them, before that column."""
    statements = uninstall_sql(vendor)
    if vendor == "postgresql":
        for op in ("INSERT", "UPDATE", "DELETE"):
            statements.append(_pg_function(op, tz, ended))
            statements.append(
                f"CREATE TRIGGER enrollment_counts_{op.lower()} AFTER {op} ON {ENROLLMENT} {_PG_TRANSITIONS[op]}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION enrollment_counts_{op.lower()}()"
            )
    else:
        statements += _sqlite_triggers(tz, ended)
    return statements


def uninstall_sql(vendor: str) -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS enrollment_counts_{op} {'ON ' + ENROLLMENT if vendor == 'postgresql' else ''}"
                  for op in ("insert", "update", "delete")]
    if vendor == "postgresql":
        statements += [f"DROP FUNCTION IF EXISTS enrollment_counts_{op}()" for op in ("insert", "update", "delete")]
    return statements


def _day_expression(vendor: str, tz: str) -> str:
    if vendor == "postgresql":
        return f"(created AT TIME ZONE {_quote(tz)})::date"
    return f"django_datetime_cast_date(created, {_quote(tz)}, 'UTC')"


def drift_sql(vendor: str, tz: str) -> tuple[str, str]:
    """Two queries, each one snapshot: the rows where a fresh count differs
    from the stored counters, as (course_id, mode, active, inactive) and
    (course_id, day, new, active) differences (fresh minus stored)."""
    active = "CASE WHEN is_active THEN 1 ELSE 0 END"
    modes = f"""
        SELECT course_id, mode, SUM(a) AS active, SUM(i) AS inactive FROM (
            SELECT course_id, mode, {active} AS a, 1 - {active} AS i FROM {ENROLLMENT}
            UNION ALL SELECT course_id, mode, -active, -inactive FROM {COUNT}
        ) x GROUP BY course_id, mode HAVING SUM(a) <> 0 OR SUM(i) <> 0 ORDER BY course_id, mode"""
    days = f"""
        SELECT course_id, day, SUM(n) AS new, SUM(a) AS active FROM (
            SELECT course_id, {_day_expression(vendor, tz)} AS day, 1 AS n, {active} AS a FROM {ENROLLMENT}
            UNION ALL SELECT course_id, day, -new, -active FROM {DAY}
        ) x GROUP BY course_id, day HAVING SUM(n) <> 0 OR SUM(a) <> 0 ORDER BY course_id, day"""
    return modes, days


def ended_drift_sql(vendor: str, tz: str) -> str:
    """One query, one snapshot: the (course_id, day, ended) where the ends
    recorded in the audit trail (``enrolled`` to ``unenrolled``, by the day of
    the audit row) differ from ``EnrollmentDayCount.ended`` (audit minus stored).
    A service writes the audit row and ends the enrollment in one transaction,
    so both are seen or neither; the audit row's time is taken in Python a
    moment after the statement's, so a change made across midnight can show
    as +1 on one day and -1 on the next."""
    return f"""
        SELECT course_id, day, SUM(e) AS ended FROM (
            SELECT course_id, {_day_expression(vendor, tz)} AS day, 1 AS e FROM {AUDIT}
            WHERE state_before = 'enrolled' AND state_after = 'unenrolled'
            UNION ALL SELECT course_id, day, -ended FROM {DAY} WHERE ended <> 0
        ) x GROUP BY course_id, day HAVING SUM(e) <> 0 ORDER BY course_id, day"""


def fix_sql(vendor: str, tz: str, ended: bool = True) -> list[str]:
    """Add each drift to the stored counters, one statement per kind of count.

    Adding the difference rather than writing the fresh count keeps it right
    under concurrent writers: the difference is taken in one snapshot, in which
    another transaction's enrollment rows and counter increments are both
    visible or both not, and the upsert adds it to the row as it is then."""
    modes, days = drift_sql(vendor, tz)
    # SQLite needs WHERE true to tell the upsert's ON CONFLICT from a join's ON.
    return [
        f"""INSERT INTO {COUNT} AS c (course_id, mode, active, inactive) SELECT * FROM ({modes}) d WHERE true
            ON CONFLICT (course_id, mode) DO UPDATE SET active = c.active + excluded.active, inactive = c.inactive + excluded.inactive""",
        f"""INSERT INTO {DAY} AS c (course_id, day, new, active) SELECT * FROM ({days}) d WHERE true
            ON CONFLICT (course_id, day) DO UPDATE SET new = c.new + excluded.new, active = c.active + excluded.active""",
    ] + (ended_fix_sql(vendor, tz) if ended else [])


def ended_fix_sql(vendor: str, tz: str) -> list[str]:
    """Add the drift of ``ended`` from the audit trail (``ended_drift_sql``) to the counters."""
    return [
        f"""INSERT INTO {DAY} AS c (course_id, day, new, active, ended)
            SELECT course_id, day, 0, 0, ended FROM ({ended_drift_sql(vendor, tz)}) d WHERE true
            ON CONFLICT (course_id, day) DO UPDATE SET ended = c.ended + excluded.ended""",
    ]


def run(statements: list[str], connection: BaseDatabaseWrapper = default_connection) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def reinstall(apps, schema_editor) -> None:
    """A migration step: create the triggers again (see the module docstring)."""
    from django.conf import settings

    run(install_sql(schema_editor.connection.vendor, settings.TIME_ZONE), schema_editor.connection)
