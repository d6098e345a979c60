"""Membership preview benchmark, on PostgreSQL: the preview of BENCH_PREVIEW_SIZE
identifiers (10,000: a third enrolled already, a third accounts not enrolled,
a third new emails, notifications on) against the batch itself on the same
starting state, in one run; then the same for unenroll. The issue asks for the
preview within 2x of the batch.

    DATABASE_URL=postgres://... python -m bench.batch_preview

It creates (and drops first) its own database, ``<name>_bench_preview``.
Figures are printed, never asserted (tests pin the preview's query count)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import Measure, bench_course, fresh_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_PREVIEW_SIZE", "10000"))
ROUNDS = 3


def _seed(course, third: int) -> list[str]:
    from django.contrib.auth import get_user_model

    from enrollments.models import Enrollment

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"pv{i}", email=f"pv{i}@example.com", password="!") for i in range(2 * third)])
    Enrollment.objects.bulk_create([Enrollment(user=u, course=course, mode="audit", is_active=True) for u in users[:third]])
    return [u.username for u in users] + [f"new{i}@example.com" for i in range(third)]


def main() -> None:
    name = fresh_database("bench_preview", memory_broker=True)
    from django.db import transaction

    from enrollments.services import enrollment_batch_update
    from enrollments.services.batch_preview import enrollment_batch_preview

    course = bench_course("PREVIEW")
    identifiers = _seed(course, SIZE // 3)
    print(f"database {name}: {len(identifiers):,} identifiers, best of {ROUNDS}")
    for action in ("enroll", "unenroll"):
        options = {"course": course, "identifiers": identifiers, "action": action, "auto_enroll": True, "email_students": True}
        previews, batches = [], []
        for _ in range(ROUNDS):
            with Measure() as preview:
                shown = enrollment_batch_preview(**options)
            previews.append(preview)
            # The batch on the same starting state: rolled back after each round.
            with transaction.atomic():
                with Measure() as batch:
                    enrollment_batch_update(**options, actor=None, expected_fingerprint=shown.fingerprint)
                batches.append(batch)
                transaction.set_rollback(True)
        p = min(previews, key=lambda m: m.seconds)
        b = min(batches, key=lambda m: m.seconds)
        print(f"{action:9} preview {p.seconds:6.2f} s {p.queries:3} queries | batch {b.seconds:6.2f} s {b.queries:3} queries"
              f" | preview/batch {p.seconds / b.seconds:.2f}")


if __name__ == "__main__":
    main()
