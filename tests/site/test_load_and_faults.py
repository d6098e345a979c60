"""Load and faults (``pytest -m faults``; PostgreSQL only, part of ``make test``).

Two web processes (gunicorn) and two Celery workers run against one PostgreSQL
test database and one Redis database, under a bounded load fired at once at
both web processes:

- a bulk enroll job of more than two chunks of new emails (the only job on the
  ``bulk`` queue, which only the first worker consumes, so it is known to run there);
- four course-team batches of overlapping people (existing users and new emails,
  with emails) answered in the request, two on each web process;
- sixteen learners redeeming two codes of five uses each;
- two reports.

The first worker is killed with SIGKILL in the bulk job, once its first chunk
has committed, and started again. The test plays beat: it sends every periodic task of the
beat schedule each second (the workers count a heartbeat as stale after
``STALE_AFTER`` seconds instead of minutes). Then the invariants:

- no duplicate enrollment, allowance, audit entry, outbox row or email per
  person and change (the killed worker was in a job, not sending mail, so no
  email may be repeated);
- every job finished and succeeded (none queued or running): the killed one
  was taken over and completed, each of its people allowed and audited once;
- each limited code used exactly its five uses, five redemptions each.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from email.utils import parseaddr
from pathlib import Path

import pytest
import requests
from django.db.models import Count
from django.db.models.functions import Lower
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from codes.models import EnrollmentCode, Redemption
from courses.models import CourseRole
from enrollment_site.celery import app
from enrollments.models import Allowance, BatchJob, BulkEnrollJob, Enrollment, EnrollmentAudit, Notification
from enrollments.services.jobs import BATCH_CHUNK
from organisations.models import OrgJob
from reports.models import ReportTask
from tests.celery_worker import (
    BASE_DIR,
    CeleryWorker,
    _celery_executable,
    _claimed_redis_db,
    _database_url,
    _flush_redis,
    _reset_app_connections,
)

from ..codes.factories import EnrollmentCodeFactory
from ..factories import CourseFactory, CourseRoleFactory, UserFactory

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

STALE_AFTER = 10  # seconds without a heartbeat before a running job counts as lost
DEADLINE = 90  # seconds for everything to settle after the kill; a hang fails, never blocks
BIG_JOB_SIZE = 2 * BATCH_CHUNK + BATCH_CHUNK // 2  # three chunks: the kill lands after the first
CSRF = "f" * 32  # a CSRF secret of our own, sent as the cookie and the header


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """The web processes and workers of one test, all on one database and one broker."""

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str, media_root: str):
        self.tmp_path = tmp_path
        self.mail_dir = tmp_path / "mail"
        self.mail_dir.mkdir()
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "EMAIL_", "DATABASE_", "TEST_DATABASE"))
        }
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "enrollment_site.settings",
                "DATABASE_URL": database_url,
                "CONN_MAX_AGE": "0",  # nothing may keep the test database open once the test is over
                "CELERY_BROKER_URL": broker_url,
                "CELERY_RESULT_BACKEND": broker_url,
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(self.mail_dir),
                "MEDIA_ROOT": media_root,
                "JOBS_STALE_AFTER_SECONDS": str(STALE_AFTER),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.processes: list[tuple[subprocess.Popen, object]] = []
        self.logs: dict[str, Path] = {}

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log_path = self.tmp_path / f"{name}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(command, cwd=BASE_DIR, env=self.env, stdout=log_file, stderr=subprocess.STDOUT)
        self.processes.append((process, log_file))
        self.logs[name] = log_path
        return process

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def web(self, name: str) -> str:
        port = _free_port()
        gunicorn = str(Path(_celery_executable()).with_name("gunicorn"))
        self._start(name, [gunicorn, "enrollment_site.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8", "--graceful-timeout", "2"])
        return f"http://127.0.0.1:{port}"

    def worker(self, name: str, queues: str) -> CeleryWorker:
        command = [
            _celery_executable(), "-A", "enrollment_site", "worker", "--pool=solo", "-Q", queues,
            "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        process = self._start(name, command)
        return CeleryWorker(
            process=process, broker_url=self.env["CELERY_BROKER_URL"], result_backend=self.env["CELERY_RESULT_BACKEND"],
            mail_dir=self.mail_dir, log_path=self.logs[name], hostname=name, env=self.env,
        )  # fmt: skip

    def stop(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, log_file in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
            log_file.close()


def _wait(predicate, *, what: str, timeout: float, stack: Stack, interval: float = 0.2, between=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {name}\n{stack.log(name)[-3000:]}" for name in stack.logs)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")
        if between is not None:
            between()
        time.sleep(interval)


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _session(user) -> requests.Session:
    """A browser of ``user``: their session cookie and a CSRF secret."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.cookies.set("csrftoken", CSRF)
    session.headers["X-CSRFToken"] = CSRF
    return session


def _fire_together(calls: list) -> list:
    """Run every call at the same moment (a barrier), each in its own thread."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(i, call):
        barrier.wait(timeout=30)
        try:
            answers[i] = call()
        except Exception as exc:  # an answer to assert on, not a silent thread death
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


@pytest.fixture
def stack(transactional_db, settings, tmp_path):
    from django.db import connection

    database_url = _database_url(connection.settings_dict)
    with _claimed_redis_db() as broker_url:
        _flush_redis(broker_url)
        stack = Stack(tmp_path, database_url, broker_url, str(settings.MEDIA_ROOT))
        # The test process publishes to the same broker (it plays beat).
        saved = {key: app.conf.changes[key] for key in ("broker_url", "task_always_eager") if key in app.conf.changes}
        settings.CELERY_BROKER_URL = broker_url
        settings.CELERY_TASK_ALWAYS_EAGER = False
        app.conf.update(broker_url=broker_url, task_always_eager=False)
        _reset_app_connections(app)
        try:
            yield stack
        finally:
            stack.stop()
            for key in ("broker_url", "task_always_eager"):
                app.conf.changes.pop(key, None)
            app.conf.changes.update(saved)
            _reset_app_connections(app)
            _flush_redis(broker_url)


def _play_beat() -> None:
    for entry in app.conf.beat_schedule.values():
        app.send_task(entry["task"])


JOB_MODELS = (BatchJob, BulkEnrollJob, ReportTask, OrgJob)


def _unfinished_jobs() -> list[str]:
    return [
        f"{model.__name__} {job.pk}: {job.status} {job.done}/{job.total}"
        for model in JOB_MODELS
        for job in model.objects.filter(status__in=model.PENDING_STATUSES)
    ]


def _settled() -> bool:
    unsent = Notification.objects.filter(status__in=[Notification.Status.PENDING, Notification.Status.SENDING]).exists()
    return not _unfinished_jobs() and not unsent


def test_two_web_processes_and_two_workers_under_load_with_a_worker_killed(stack):
    # --- the people, courses and codes ------------------------------------------------
    course = CourseFactory(display_name="Faults 101")
    coded = CourseFactory(display_name="Codes 201")
    boss = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="boss")).user
    token = Token.objects.create(user=boss).key
    users = [UserFactory(username=f"load{i:03d}") for i in range(100)]
    newcomers = [f"newcomer{i:03d}@example.com" for i in range(55)]
    big = [f"big{i:05d}@example.com" for i in range(BIG_JOB_SIZE)]
    codes = [EnrollmentCodeFactory(courses=[coded], max_uses=5) for _ in range(2)]
    redeemers = users[60:76]

    # --- two web processes, two workers (only the first on the bulk queue) ------------
    webs = [stack.web("web1"), stack.web("web2")]
    victim = stack.worker("worker1", "default,email,bulk,reports")
    other = stack.worker("worker2", "default,email,reports")
    for base in webs:
        _wait(lambda base=base: _up(base), what=f"{base} to answer /healthz", timeout=60, stack=stack, interval=0.5)
    for worker in (victim, other):
        _wait(lambda worker=worker: " ready." in worker.log, what="a worker to be ready", timeout=60, stack=stack)

    # --- the load, fired at once at both web processes ---------------------------------
    api = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bulk_url = reverse("api_bulk_enroll")

    def bulk(base, identifiers, *, emails):
        body = {"action": "enroll", "identifiers": ", ".join(identifiers), "auto_enroll": True, "email_students": emails, "courses": course.key}
        return lambda: requests.post(base + bulk_url, data=json.dumps(body), headers=api, timeout=60)

    def redeem(base, user, code):
        session = _session(user)
        return lambda: session.post(base + reverse("redeem_code"), data={"code": code}, timeout=60, allow_redirects=False)

    def report(base, kind):
        session = _session(boss)
        url = base + reverse("report_request", args=[course.key])
        return lambda: session.post(url, data={"kind": kind}, timeout=60, allow_redirects=False)

    windows = [[u.username for u in users[k * 20 : k * 20 + 50]] + newcomers[k * 10 : k * 10 + 25] for k in range(4)]
    calls = [bulk(webs[0], big, emails=False)]
    calls += [bulk(webs[k % 2], window, emails=True) for k, window in enumerate(windows)]
    calls += [redeem(webs[i % 2], user, codes[i % 2].code) for i, user in enumerate(redeemers)]
    calls += [report(webs[0], "enrolled_profiles"), report(webs[1], "may_enroll")]
    answers = _fire_together(calls)
    errors = [answer for answer in answers if isinstance(answer, Exception)]
    assert not errors, errors

    # --- the first worker dies in the bulk job, its first chunk committed; it comes back --
    def mid_job():
        job = BulkEnrollJob.objects.first()
        if job is not None and job.status == BulkEnrollJob.Status.SUCCEEDED:
            pytest.fail("the bulk job finished before its worker could be killed in it: make BIG_JOB_SIZE larger")
        return job is not None and job.status == BulkEnrollJob.Status.RUNNING and 0 < job.done < job.total

    _wait(mid_job, what="the bulk job's first chunk", timeout=60, stack=stack, interval=0.05)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    restarted = stack.worker("worker1-restarted", "default,email,bulk,reports")
    _wait(lambda: " ready." in restarted.log, what="the restarted worker to be ready", timeout=60, stack=stack)

    # --- beat's periodic tasks until everything settled ----------------------------------
    _wait(_settled, what="every job finished and every email sent", timeout=DEADLINE, stack=stack, interval=1.0, between=_play_beat)

    # --- what each caller was told ----------------------------------------------------------
    big_answer, batch_answers = answers[0], answers[1:5]
    redeem_answers, report_answers = answers[5 : 5 + len(redeemers)], answers[5 + len(redeemers) :]
    assert big_answer.status_code == 202, big_answer.text[:500]
    web_logs = "\n".join(f"--- {name}\n{stack.log(name)[-6000:]}" for name in ("web1", "web2"))
    assert [a.status_code for a in batch_answers] == [200] * 4, web_logs
    assert [a.status_code for a in report_answers] == [302, 302]
    assert sorted(a.status_code for a in redeem_answers) == [200] * 10 + [400] * 6

    # --- every job finished, and succeeded -----------------------------------------------
    assert _unfinished_jobs() == []
    failed = [f"{m.__name__} {j.pk}: {j.error}" for m in JOB_MODELS for j in m.objects.exclude(status=m.Status.SUCCEEDED)]
    assert failed == [], f"jobs that did not succeed: {failed}"
    assert ReportTask.objects.filter(course=course, status=ReportTask.Status.SUCCEEDED).count() == 2

    # --- nothing doubled ---------------------------------------------------------------------
    pairs = list(Enrollment.objects.values_list("user_id", "course_id"))
    assert len(pairs) == len(set(pairs))
    allowances = list(Allowance.objects.values_list("course_id", "email_key"))
    assert len(allowances) == len(set(allowances))
    # One audit entry per person and change: a user whatever identifier named them, else the address.
    doubled_audits = list(
        EnrollmentAudit.objects.filter(user__isnull=False)
        .values("course_id", "user_id", "state_before", "state_after")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    ) + list(
        EnrollmentAudit.objects.filter(user__isnull=True)
        .values("course_id", "state_before", "state_after", who=Lower("identifier"))
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert doubled_audits == [], f"{len(doubled_audits)} changes audited more than once, e.g. {doubled_audits[:3]}"
    doubled_notes = list(Notification.objects.values("course_id", "recipient_key", "kind").annotate(n=Count("id")).filter(n__gt=1))
    assert doubled_notes == [], f"{len(doubled_notes)} people written to the outbox twice for one change, e.g. {doubled_notes[:3]}"
    mail = [(parseaddr(e["to"])[1].lower(), e["subject"]) for e in victim.emails()]  # every worker's, one directory
    doubled_mail = [key for key, n in Counter(mail).items() if n > 1]
    # The worker was killed in a job, with no message in flight: not even the one duplicate a crash may cost.
    assert doubled_mail == [], f"{len(doubled_mail)} emails sent twice, e.g. {doubled_mail[:3]}"

    # --- everyone where they belong, each once ----------------------------------------------
    named_users = {name for window in windows for name in window if "@" not in name}
    named_emails = {name for window in windows for name in window if "@" in name}
    enrolled = set(Enrollment.objects.filter(course=course, is_active=True, user__username__startswith="load").values_list("user__username", flat=True))
    assert enrolled == named_users
    assert set(Allowance.objects.filter(course=course).values_list("email_key", flat=True)) == named_emails | set(big)
    assert EnrollmentAudit.objects.filter(course=course, identifier__startswith="big").count() == len(big)
    assert len(mail) == Notification.objects.filter(status=Notification.Status.SENT).count()
    assert {to for to, _ in mail} == {u.email for u in users if u.username in named_users} | named_emails

    # --- codes: exactly their uses --------------------------------------------------------------
    for code in codes:
        code_row = EnrollmentCode.objects.get(pk=code.pk)
        assert code_row.uses == code_row.max_uses == 5
        assert Redemption.objects.filter(code=code_row).count() == 5
    assert Enrollment.objects.filter(course=coded, is_active=True).count() == 10
