"""Personas and shared fixtures.

The personas are the people of README's "Who may do what": a platform admin, the admin and the
staff of ``course``, staff of another course, a learner and anonymous."""

import os

import pytest

from courses.models import CourseRole

from .factories import CourseFactory, CourseRoleFactory, PlatformAdminFactory, UserFactory

# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    """On SQLite (the embedded default of `make run`) the whole suite runs, browser
    journeys included, except what needs PostgreSQL: tests marked ``postgresql``
    and the real-worker and load-and-faults tests (another process cannot see
    SQLite's in-memory test database). They are deselected, not skipped: they run in the PostgreSQL pass.
    So are the tests marked ``one_database``: data migrations run back and forth,
    Python over the ORM with nothing particular to a database, which take a
    minute of the suite each time they run (every migration after theirs is
    undone and done again)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    kept, deselected = [], []
    for item in items:
        needs_postgresql = any(item.get_closest_marker(name) for name in ("postgresql", "worker", "faults", "one_database"))
        (deselected if needs_postgresql else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs():
    """The .mo files are built, not kept in git (``make test`` compiles them first):
    a run of pytest alone compiles them when a catalog is newer than its build, and
    then drops the translations already loaded, so they are read afresh."""
    from pathlib import Path

    from django.conf import settings
    from django.core.management import call_command
    from django.utils.translation import trans_real

    catalogs = list(Path(settings.BASE_DIR, "locale").glob("*/LC_MESSAGES/django.po"))
    if any(not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime for po in catalogs):
        call_command("compilemessages", ignore_patterns=[".venv", "node_modules", "var"], verbosity=0)
        trans_real._translations = {}
        trans_real._default = None


@pytest.fixture(autouse=True)
def _celery_join_guard_reset():
    """Each test starts with Celery's "never call result.get() within a task"
    guard off, as a fresh process has it. The guard is one process-wide flag
    that an eager task sets around itself and then puts back as it found it:
    two threads running eager tasks at once (the race tests commit in threads,
    and each commit runs its tasks) can leave it set, and a later test waiting
    for a real worker's result then failed with "Never call result.get()
    within a task!" (tests/site/test_celery_worker.py, tests/reports/test_worker.py)."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _site_language_and_zone():
    """Each test starts in the site's language and time zone: a request leaves its
    person's active in the thread (as Django's LocaleMiddleware does), which a
    following test calling a service directly would otherwise inherit."""
    from django.utils import timezone, translation

    yield
    translation.deactivate()
    timezone.deactivate()


@pytest.fixture
def course(db):
    return CourseFactory(key="course-v1:Acme+ENR101+2026", display_name="Enrollment 101")


@pytest.fixture
def other_course(db):
    return CourseFactory(key="course-v1:Acme+OTHER+2026", display_name="Another course")


@pytest.fixture
def platform_admin(db):
    return PlatformAdminFactory(username="platformadmin")


@pytest.fixture
def course_admin(course):
    return CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="courseadmin")).user


@pytest.fixture
def course_staff(course):
    return CourseRoleFactory(course=course, role=CourseRole.Role.STAFF, user=UserFactory(username="coursestaff")).user


@pytest.fixture
def other_staff(other_course):
    return CourseRoleFactory(course=other_course, role=CourseRole.Role.STAFF, user=UserFactory(username="otherstaff")).user


@pytest.fixture
def learner(db):
    return UserFactory(username="learner", email="learner@example.com")


@pytest.fixture
def client_for(client):
    """A logged-in test client for a persona (None for anonymous)."""

    def login(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return login
