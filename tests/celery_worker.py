"""A real Celery worker, in its own process, for tests marked ``worker``.

Import the fixture into a test module with::

    from tests.celery_worker import celery_worker  # noqa: F401

and mark the tests ``@pytest.mark.worker`` and
``@pytest.mark.django_db(transaction=True)``: the worker is another process and
only sees committed rows. The worker uses pytest-django's test database (so it
needs PostgreSQL; SQLite's in-memory test database cannot be shared), a Redis
database of its own as broker and result backend (flushed before it starts),
writes emails as files into ``mail_dir`` and stored files under the test's
``settings.MEDIA_ROOT``. While the fixture is active, the
test process publishes to the same broker instead of running tasks eagerly.

Several test runs share this machine's Redis, so each worker claims a Redis
database of its own (14, 13, ... 8) with a lock key in database 0 before it
flushes and uses it; a run that finds them all taken fails with a clear message.
Environment: ``TEST_REDIS_URL`` (host and port of Redis, default
``redis://127.0.0.1:6379/0``) and ``TEST_CELERY_REDIS_DB`` (use exactly this
database number, without a lock). Every wait is bounded, so a worker that never
answers makes the test fail, not hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
QUEUES = "default,email,bulk,reports"
READY_TIMEOUT = 60  # seconds for the worker to import Django and connect
STOP_TIMEOUT = 20  # seconds for a warm shutdown before the worker is killed


def _decoded(part) -> str:
    if part is None:
        return ""
    return (part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "utf-8", errors="replace")


@dataclass
class CeleryWorker:
    """A running worker: where its log and its emails go."""

    process: subprocess.Popen
    broker_url: str
    result_backend: str
    mail_dir: Path
    log_path: Path
    hostname: str
    env: dict[str, str] = field(repr=False, default_factory=dict)
    command: list[str] = field(repr=False, default_factory=list)
    log_file: object = field(repr=False, default=None)

    @property
    def log(self) -> str:
        """The worker's output so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def emails(self) -> list[dict[str, str]]:
        """Every message the worker delivered so far, as {"to", "subject", "body", "html"}
        (the plain-text part, and the HTML alternative or "")."""
        found = []
        for path in sorted(self.mail_dir.glob("*.log")) if self.mail_dir.exists() else []:
            # The file backend writes each message followed by a line of 79 dashes.
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if not chunk.strip():
                    continue
                msg = message_from_bytes(chunk.lstrip(b"\n"))
                parts = {part.get_content_type(): part for part in msg.walk() if not part.is_multipart()}
                found.append(
                    {
                        "to": str(make_header(decode_header(msg.get("To", "")))),
                        "subject": str(make_header(decode_header(msg.get("Subject", "")))),
                        "body": _decoded(parts.get("text/plain")),
                        "html": _decoded(parts.get("text/html")),
                    }
                )
        return found

    def start_again(self) -> None:
        """Start a fresh worker like the first (same broker, database, mail
        directory and log), once this one has exited (say, killed by a test)."""
        assert self.process.poll() is not None, "the worker is still running"
        ready = self.log.count(" ready.")
        self.process = subprocess.Popen(self.command, cwd=BASE_DIR, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.wait_for(lambda: self.log.count(" ready.") > ready, timeout=READY_TIMEOUT, what="the fresh worker to be ready")

    def wait_for(self, predicate, *, timeout: float = 30, interval: float = 0.2, what: str = "the worker"):
        """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"the Celery worker exited (code {self.process.returncode}) while waiting for {what}.\n{self.log[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}.\nWorker log:\n{self.log[-5000:]}")
            time.sleep(interval)


# The locks live in database 0 (the default broker database, which no test
# flushes); 15 and 1 are popular as caches, which conftest clears per test.
LOCK_DB = 0
CANDIDATE_DBS = range(14, 7, -1)
LOCK_TTL = 15 * 60  # seconds; a crashed run frees its database after this


def _redis_url(db: int) -> str:
    base = urlsplit(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit((base.scheme, base.netloc, f"/{db}", "", ""))


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


@contextmanager
def _claimed_redis_db():
    """A Redis database no other test run uses at the same time, as a URL."""
    import redis

    if os.environ.get("TEST_CELERY_REDIS_DB"):
        yield _redis_url(int(os.environ["TEST_CELERY_REDIS_DB"]))
        return
    token = uuid.uuid4().hex
    locks = _redis(_redis_url(LOCK_DB))
    try:
        for db in CANDIDATE_DBS:
            key = f"pytest-celery-worker:db:{db}"
            # SET NX: two runs starting at once cannot both win the same database.
            if locks.set(key, token, nx=True, ex=LOCK_TTL):
                break
        else:
            pytest.fail(f"every Redis database {CANDIDATE_DBS.start}..{CANDIDATE_DBS.stop + 1} is in use by another worker test run")
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable ({exc}); start it with `bash scripts/test_services.sh`")
    try:
        yield _redis_url(db)
    finally:
        if locks.get(key) == token.encode():
            locks.delete(key)
        locks.close()


def _flush_redis(url: str) -> None:
    import redis

    client = _redis(url)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {url} ({exc}); start it with `bash scripts/test_services.sh`")
    finally:
        client.close()


def _database_url(settings_dict) -> str:
    """A DATABASE_URL for the database the test process is connected to right now."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker tests need PostgreSQL: another process cannot see SQLite's in-memory test database")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{credentials}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


def _celery_executable() -> str:
    for candidate in (Path(sys.executable).parent / "celery", BASE_DIR / ".venv" / "bin" / "celery"):
        if candidate.exists():
            return str(candidate)
    pytest.fail("no celery executable next to the Python running the tests or in .venv/bin")


def _reset_app_connections(app) -> None:
    """Forget pooled broker connections and the result backend, so that the
    next publish and the next ``.get()`` use the current configuration."""
    from kombu import pools

    # kombu keeps its pools in a process-wide registry keyed by connection
    # URL; reset() closes and forgets them all, so none is reused closed.
    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    app._backend_cache = None
    if hasattr(app._local, "backend"):
        del app._local.backend


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path, request):
    """Start ``celery worker`` on the test database and a private Redis db; yield
    a CeleryWorker; stop it and restore the in-process Celery app afterwards.
    A test marked ``@pytest.mark.worker_env(NAME="value")`` adds to (or
    overrides) the worker's environment, e.g. its ``EMAIL_BACKEND``."""
    from django.db import connection

    from enrollment_site.celery import app

    marker = request.node.get_closest_marker("worker_env")
    extra_env = dict(marker.kwargs) if marker else {}
    database_url = _database_url(connection.settings_dict)
    with _claimed_redis_db() as broker_url:
        yield from _run_worker(app, settings, tmp_path, database_url=database_url, broker_url=broker_url, extra_env=extra_env)


def _run_worker(app, settings, tmp_path, *, database_url: str, broker_url: str, extra_env: dict[str, str] | None = None):
    _flush_redis(broker_url)

    mail_dir = tmp_path / "worker-mail"
    mail_dir.mkdir()
    log_path = tmp_path / "worker.log"
    hostname = f"pytest-{uuid.uuid4().hex[:8]}@%h"

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "EMAIL_", "DATABASE_", "TEST_DATABASE"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "enrollment_site.settings",
            "DATABASE_URL": database_url,
            # No persistent connections: nothing may keep the test database open
            # once the worker is gone (pytest-django drops it at the end).
            "CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            # Files the worker saves (reports, batch results) land where the test
            # process reads them: the MEDIA_ROOT of this test.
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    command = [
        _celery_executable(), "-A", "enrollment_site", "worker",
        "--pool=solo", "-Q", QUEUES, "-n", hostname,
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "-l", "INFO",
    ]  # fmt: skip

    # The test process publishes to the worker's broker from now on.
    conf_keys = ("broker_url", "result_backend", "task_always_eager")
    saved_changes = {key: app.conf.changes[key] for key in conf_keys if key in app.conf.changes}
    settings.CELERY_BROKER_URL = broker_url
    settings.CELERY_RESULT_BACKEND = broker_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(broker_url=broker_url, result_backend=broker_url, task_always_eager=False)
    _reset_app_connections(app)

    log_file = log_path.open("wb")
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = CeleryWorker(
        process=process,
        broker_url=broker_url,
        result_backend=broker_url,
        mail_dir=mail_dir,
        log_path=log_path,
        hostname=hostname,
        env=env,
        command=command,
        log_file=log_file,
    )
    try:
        worker.wait_for(lambda: " ready." in worker.log, timeout=READY_TIMEOUT, what="the worker to be ready")
        yield worker
    finally:
        process = worker.process  # the fresh one, if the test started one
        if process.poll() is None:
            process.terminate()  # warm shutdown: finishes the task at hand
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        log_file.close()
        for key in conf_keys:
            app.conf.changes.pop(key, None)
        app.conf.changes.update(saved_changes)
        _reset_app_connections(app)
        _flush_redis(broker_url)
