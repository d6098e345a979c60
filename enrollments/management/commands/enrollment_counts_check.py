"""Recount the enrollment counters and report (or, with --fix, fix) any drift."""

from django.core.management.base import BaseCommand, CommandError

from enrollments.services import enrollment_counts_check


class Command(BaseCommand):
    help = (
        "Recount every course's enrollments and compare with the counters the database keeps "
        "(per mode, per day; the ends per day against the audit trail). Exits with status 1 when they drifted and were not fixed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Re-install the triggers and correct the counters.")

    def handle(self, *args, fix=False, **options):
        drift = enrollment_counts_check(fix=fix)
        for course_id, mode, active, inactive in drift.modes:
            self.stdout.write(f"course {course_id} mode {mode}: active {active:+}, inactive {inactive:+}")
        for course_id, day, new, active in drift.days:
            self.stdout.write(f"course {course_id} day {day}: new {new:+}, active {active:+}")
        for course_id, day, ended in drift.ended:
            self.stdout.write(f"course {course_id} day {day}: ended {ended:+} (by the audit trail)")
        if drift and not drift.fixed:
            raise CommandError(drift.summary())
        self.stdout.write(drift.summary())
