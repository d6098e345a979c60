"""The enrollment write lock of a course: taken first by every transaction that
changes a course's enrollments or allowances, before it reads what to change.

Why a lock per course and not only the rows: a batch locks the rows it will
change, but rows that do not exist yet cannot be locked. Two batches naming the
same people could each lock what existed when they read, then each wait for the
other's new rows (a new enrollment of one, an invitation just committed and
locked by the other): a deadlock, which PostgreSQL breaks by failing one of
them. Holding the course first, the second batch reads only once the first has
committed, and sees its rows. It costs no concurrency that was not already
lost: the counters' triggers (``enrollments/counters.py``) update the course's
counter rows, which writers of one course already take in turn.

The lock is ``FOR NO KEY UPDATE`` on the course rows, in id order (a
transaction over several courses takes them all in one statement, or one by
one in id order), as self-enrollment and code redemption take them: it does not
block reads, nor inserts that only reference the course (``FOR KEY SHARE``).
On SQLite it is the database's write lock (``sqlite_write_lock``), which
serialises writers anyway."""

from collections.abc import Iterable

from django.db import connection

from enrollment_site.lib.bulk import sqlite_write_lock

from ..models import Enrollment


def course_write_lock(course_ids: Iterable[int]) -> None:
    """Lock the courses ``course_ids`` for writing their enrollments, in id
    order, until the surrounding transaction ends. Call it inside
    ``transaction.atomic`` before the reads a write is decided on; taking a
    lock already held is free."""
    if connection.vendor == "sqlite":
        sqlite_write_lock(Enrollment)
        return
    ids = sorted(set(course_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM courses_course WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids])
