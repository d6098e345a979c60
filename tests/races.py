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
    barrier = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def work(i, client):
        try:
            barrier.wait(timeout=30)
            answers[i] = request(i, client)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers
