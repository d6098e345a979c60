"""Firing requests at the same moment from real threads, for the race tests
(PostgreSQL: each thread has its own connection)."""

import threading
import time
from collections.abc import Callable

from django.db import connections
from django.test import Client


def slowed(real: Callable, seen: list, key: str, *, seconds: float = 0.3) -> Callable:
    """``real`` wrapped to record its ``key`` argument and then wait, so that
    every request fired together is in flight at once when it gets here."""
    lock = threading.Lock()

    def wrapper(**kwargs):
        with lock:
            seen.append(kwargs[key])
        time.sleep(seconds)
        return real(**kwargs)

    return wrapper


def met(real: Callable, parties: int, *, timeout: float = 30) -> Callable:
    """``real`` wrapped so that no caller goes on until ``parties`` callers have
    reached it: every one of them has read what it read before this point and
    none has written what comes after, the moment a race between a read and a
    write is about. A caller that never arrives (say, it waits on a lock
    another holds) breaks the barrier, and every waiting caller raises."""
    barrier = threading.Barrier(parties, timeout=timeout)

    def wrapper(*args, **kwargs):
        barrier.wait()
        return real(*args, **kwargs)

    return wrapper


def logged_in_clients(user, count: int) -> list[Client]:
    clients = []
    for _ in range(count):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


def fire_together(clients: list[Client], request: Callable[[int, Client], object]) -> list:
    """Call ``request(i, client)`` for every client at the same moment (a
    barrier), each in its own thread; return what each returned, in order."""
    return call_together([lambda i=i, c=c: request(i, c) for i, c in enumerate(clients)])


def call_together(calls: list[Callable[[], object]]) -> list:
    """Make every call at the same moment (a barrier), each in its own thread
    with its own database connection; return what each returned (or the
    exception it raised), in order."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def work(i, call):
        try:
            barrier.wait(timeout=30)
            answers[i] = call()
        except Exception as exc:
            answers[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers
