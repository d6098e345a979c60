"""A local SMTP server that keeps what it is sent (aiosmtpd), for tests and the
email benchmark: it offers PIPELINING or not, records the bytes each
connection sent in each read (to tell pipelined commands from one-by-one ones)
and can stall on the nth message, before answering its end of data.

    with SmtpSink(pipelining=True) as sink:
        settings.EMAIL_PORT = sink.port
        ...
        sink.messages  # [(recipients, bytes)], in the order accepted
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SinkHandler:
    def __init__(self, *, pipelining: bool = True, stall_at: int | None = None, keep: bool = True, counter=None,
                 refuse: str | None = None):
        self.pipelining = pipelining
        self.refuse = refuse  # a recipient whose message is refused at its end of data (554)
        self.counter = counter  # a multiprocessing.Value that another process reads
        # Stall before answering the end of data of this message (1-based), for a test to kill the sender meanwhile.
        self.stall_at = stall_at
        self.keep = keep
        self.messages: list[tuple[list[str], bytes]] = []
        self.count = 0
        self.sessions = 0  # EHLOs: one per client connection
        self.reads: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.refuse in envelope.rcpt_tos:
            return "554 5.7.1 Refused"
        with self.lock:
            self.count += 1
            number = self.count
            if self.counter is not None:
                self.counter.value = number
            if self.keep:
                self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        if number == self.stall_at:
            await asyncio.sleep(120)
        return "250 OK"


class RecordingSMTP(SMTP):
    def data_received(self, data: bytes) -> None:
        if self.event_handler.keep:
            self.event_handler.reads.append(bytes(data))
        super().data_received(data)


class _Controller(Controller):
    def factory(self):
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    """The sink in a thread of this process (see ``SinkHandler`` for the options)."""

    def __init__(self, port: int | None = None, **options):
        self.handler = SinkHandler(**options)
        self.port = port or free_port()
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port, decode_data=False)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[tuple[list[str], bytes]]:
        return self.handler.messages

    def recipients(self) -> list[str]:
        return [to for rcpts, _ in self.messages for to in rcpts]


def serve_forever(port: int, pipelining: bool, ready, counter) -> None:
    """The sink as a process of its own (the benchmark's): counts into ``counter``, keeps nothing."""
    import time

    with SmtpSink(port, pipelining=pipelining, keep=False, counter=counter):
        ready.set()
        while True:
            time.sleep(3600)
