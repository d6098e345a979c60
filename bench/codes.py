"""Enrollment codes benchmark, on PostgreSQL.

    DATABASE_URL=postgres://... python -m bench.codes

1. Generating 500 codes: seconds and SQL statements (the codes are one INSERT).
2. Redemptions per second from several concurrent HTTP clients against a live
   gunicorn server, every client redeeming the same code with a use limit
   below the number of attempts; afterwards the number of redemptions and the
   code's ``uses`` are checked against the limit.

It creates (and drops first) its own database, ``<name>_bench_codes``. Figures
are printed, never asserted, except the over-redemption check, which must hold.
Knobs: BENCH_CLIENTS (8), BENCH_ATTEMPTS (400), BENCH_CODE_LIMIT (150),
BENCH_WORKERS (4 gunicorn workers)."""

import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enrollment_site.settings")

from bench.common import fresh_database  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "400"))
LIMIT = int(os.environ.get("BENCH_CODE_LIMIT", "150"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


def _setup_database() -> str:
    fresh_database("bench_codes")
    return os.environ["DATABASE_URL"]


def bench_generate(course, actor, rounds=5):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from codes.services import code_batch_generate

    seconds, statements, inserts = [], 0, 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            code_batch_generate(actor=actor, courses=[course], count=500, prefix="BENCH")
            seconds.append(time.perf_counter() - started)
        statements = len(ctx.captured_queries)
        inserts = sum(1 for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "codes_enrollmentcode"'))
    print(f"generate 500 codes: median {statistics.median(seconds) * 1000:.1f} ms over {rounds} rounds, "
          f"{statements} SQL statements, {inserts} INSERT into codes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sessions(users) -> list[str]:
    """A logged-in session per user, written straight to the shared session store."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    keys = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return keys


def bench_redeem_live(course, database_url):
    import requests
    from django.contrib.auth import get_user_model

    from codes.models import Redemption
    from codes.services import code_batch_generate
    from enrollments.models import Enrollment

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"redeemer{i}", email=f"redeemer{i}@example.com", password="!") for i in range(ATTEMPTS)]
    )
    users = list(User.objects.filter(username__startswith="redeemer").order_by("id"))
    sessions = _sessions(users)
    code = code_batch_generate(actor=None, courses=[course], count=1, max_uses=LIMIT).codes.get()

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "bench.codes_settings", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "enrollment_site.wsgi", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(60):
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.5)
        token_re = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
        # Each attempt needs a form token; fetch them before the clock starts.
        prepared = []
        for key in sessions:
            http = requests.Session()
            http.cookies.set("sessionid", key)
            page = http.get(f"{base}/redeem/", timeout=10)
            prepared.append((http, token_re.search(page.text).group(1)))

        statuses: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(CLIENTS + 1)

        def client(chunk):
            barrier.wait()
            for http, token in chunk:
                response = http.post(f"{base}/redeem/", data={"code": code.code, "csrfmiddlewaretoken": token},
                                     headers={"Referer": f"{base}/redeem/"}, timeout=30)
                with lock:
                    statuses.append(response.status_code)

        threads = [threading.Thread(target=client, args=(prepared[i::CLIENTS],)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    code.refresh_from_db()
    redemptions = Redemption.objects.filter(code=code).count()
    enrolled = Enrollment.objects.filter(course=course, user__username__startswith="redeemer", is_active=True).count()
    ok, refused = statuses.count(200), statuses.count(400)
    print(f"redeem over HTTP: {len(statuses)} attempts by {CLIENTS} clients against {WORKERS} gunicorn workers "
          f"in {seconds:.2f} s = {len(statuses) / seconds:.0f} attempts/s; {ok} redeemed, {refused} told 'used up', "
          f"other statuses {sorted(set(statuses) - {200, 400})}")
    print(f"after: limit {LIMIT}, uses {code.uses}, redemptions {redemptions}, enrollments {enrolled}")
    expected = min(LIMIT, ATTEMPTS)
    if not (code.uses == redemptions == enrolled == ok == expected):
        sys.exit(f"OVER- OR UNDER-REDEMPTION: expected {expected} everywhere")
    print("redemptions match the limit exactly")


def main():
    database_url = _setup_database()
    from django.contrib.auth import get_user_model

    from courses.models import Course

    course = Course.objects.create(key="course-v1:Bench+CODES+2026", display_name="Bench codes")
    actor = get_user_model().objects.create(username="bench-instructor", email="bench-instructor@example.com")
    bench_generate(course, actor)
    bench_redeem_live(course, database_url)


if __name__ == "__main__":
    main()
