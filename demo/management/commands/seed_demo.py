"""Demo data for the embedded default: users, courses, a course team, enrollments.

Idempotent: running it again creates only what is missing and changes nothing else."""

import secrets
import time
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from courses.models import Course, CourseRole
from enrollments.models import Enrollment, Outcome, Source
from enrollments.reasons import DEMO_DATA
from enrollments.services import enrollment_batch_update
from enrollments.services.team import course_team_member_add
from organisations.models import OrgUnit, UnitKind
from organisations.services import user_profile_update

User = get_user_model()

DEMO_COURSE_KEY = "course-v1:Demo+ENR101+2026"
NAMED_LEARNERS = 10
CHUNK = 5_000


class Command(BaseCommand):
    help = "Create demo users and courses (idempotent). --learners N makes N activated learners in bulk."

    def add_arguments(self, parser):
        parser.add_argument("--learners", type=int, default=NAMED_LEARNERS, help="How many learners (default 10).")

    def handle(self, *args, learners, **options):
        started = time.monotonic()
        with transaction.atomic():
            admin = self._user("admin", "admin@example.com", "admin", is_staff=True, is_superuser=True, first_name="Ada", last_name="Admin")
            instructor = self._user("instructor", "instructor@example.com", "instructor", first_name="Ian", last_name="Instructor")
            staff = self._user("staff", "staff@example.com", "staff", first_name="Stella", last_name="Staff")
            shared_password = self._learners(learners)
            courses = self._courses(admin)
            demo = courses[DEMO_COURSE_KEY]
            if not CourseRole.objects.filter(course=demo, user=instructor).exists():
                course_team_member_add(course=demo, user=instructor, role=CourseRole.Role.ADMIN, actor=admin)
            if not CourseRole.objects.filter(course=demo, user=staff).exists():
                course_team_member_add(course=demo, user=staff, role=CourseRole.Role.STAFF, actor=instructor)
            result = enrollment_batch_update(
                course=demo, identifiers=[f"learner{i}" for i in range(1, 6)] + ["newcomer@example.com"],
                action="enroll", auto_enroll=True, email_students=False, actor=instructor,
                reason=DEMO_DATA, source=Source.BATCH,
            )
            fresh = [r.username for r in result.results if r.outcome == Outcome.ENROLLED]
            # Spread the demo learners over the past weeks, so the Course info chart has a history.
            now = timezone.now()
            for weeks, username in enumerate(reversed(fresh)):
                Enrollment.objects.filter(course=demo, user__username=username).update(created=now - timedelta(days=7 * weeks + 1))
            self._organisation(admin, instructor)
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Demo data ready in {elapsed:.1f}s."))
        self.stdout.write("Demo logins (username / password):")
        self.stdout.write("  admin / admin            platform administrator")
        self.stdout.write(f"  instructor / instructor  course admin of {DEMO_COURSE_KEY}")
        self.stdout.write(f"  staff / staff            course staff of {DEMO_COURSE_KEY}")
        self.stdout.write(f"  learner1 / learner1 … learner{min(learners, NAMED_LEARNERS)} / learner{min(learners, NAMED_LEARNERS)}   learners")
        if shared_password:
            self.stdout.write(f"  learner{NAMED_LEARNERS + 1} … learner{learners} share the password: {shared_password}")
        self.stdout.write("  instructor manages learner1-learner3 (My Team); learners 1-6 work at Acme Corp (Organisation)")

    def _organisation(self, admin, instructor):
        """A small company for the Organisation pages and My Team (first run only)."""
        company, _ = OrgUnit.objects.get_or_create(kind=UnitKind.COMPANY, name="Acme Corp")
        sales, _ = OrgUnit.objects.get_or_create(kind=UnitKind.DEPARTMENT, name="Sales")
        engineering, _ = OrgUnit.objects.get_or_create(kind=UnitKind.DEPARTMENT, name="Engineering")
        for i in range(1, 7):
            user = User.objects.filter(username=f"learner{i}", placement__company__isnull=True).first()
            if user is None:
                continue
            changes = {"company": company, "department": sales if i <= 3 else engineering, "language": "en"}
            if i <= 3:
                changes["manager"] = instructor
            user_profile_update(user=user, actor=admin, **changes)

    def _user(self, username, email, password, **extra):
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, email=email, password=password, **extra)
        EmailAddress.objects.get_or_create(user=user, email=email.lower(), defaults={"verified": True, "primary": True})
        return user

    def _learners(self, count: int) -> str | None:
        """Create learner1..learnerN that are missing, in bulk. Learners past the
        first ten share one password hashed once (hashing is the slow part)."""
        wanted = {f"learner{i}": i for i in range(1, count + 1)}
        existing = set(User.objects.filter(username__in=list(wanted)).values_list("username", flat=True))
        missing = [name for name in wanted if name not in existing]
        shared_password = None
        shared_hash = ""  # set below whenever a learner past the named ones is missing
        if any(wanted[name] > NAMED_LEARNERS for name in missing):
            shared_password = secrets.token_urlsafe(9)
            shared_hash = make_password(shared_password)
        now = timezone.now()
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            users = [
                User(
                    username=name,
                    email=f"{name}@example.com",
                    password=make_password(name) if wanted[name] <= NAMED_LEARNERS else shared_hash,
                    first_name="Learner",
                    last_name=str(wanted[name]),
                    date_joined=now,
                )
                for name in chunk
            ]
            User.objects.bulk_create(users, batch_size=CHUNK)
            ids = dict(User.objects.filter(username__in=chunk).values_list("username", "id"))
            EmailAddress.objects.bulk_create(
                [EmailAddress(user_id=ids[name], email=f"{name}@example.com", verified=True, primary=True) for name in chunk],
                batch_size=CHUNK,
                ignore_conflicts=True,
            )
        return shared_password

    def _courses(self, admin) -> dict[str, Course]:
        now = timezone.now()
        specs = [
            dict(key=DEMO_COURSE_KEY, display_name="Enrollment 101", modes="audit,verified",
                 description="A first course for trying out enrollment.", start=now - timedelta(days=30), end=now + timedelta(days=120)),
            dict(key="course-v1:Demo+DATA201+2026", display_name="Data Literacy", modes="audit,honor,verified",
                 description="Open for self-enrollment.", start=now + timedelta(days=14), end=now + timedelta(days=104)),
            dict(key="course-v1:Demo+KEY202+2026", display_name="Secure Practices (with enrollment key)", modes="honor",
                 enrollment_key="letmein", description="Learners need the key 'letmein' to self-enroll.", start=now),
            dict(key="course-v1:Demo+INV301+2026", display_name="Leadership (invitation only)", modes="professional",
                 invitation_only=True, description="Only invited learners may enroll.", start=now),
            dict(key="course-v1:Demo+OLD100+2025", display_name="Archived Orientation", modes="audit",
                 enrollment_end=now - timedelta(days=60), start=now - timedelta(days=365), end=now - timedelta(days=30),
                 description="Enrollment is closed."),
        ]
        courses = {}
        for spec in specs:
            course = Course.objects.filter(key=spec["key"]).first()
            if course is None:
                course = Course(created_by=admin, **spec)
                course.full_clean()
                course.save()
                course_team_member_add(course=course, user=admin, role=CourseRole.Role.ADMIN, actor=admin)
            courses[course.key] = course
        return courses
