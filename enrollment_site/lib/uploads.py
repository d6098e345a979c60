"""Reading an uploaded table in a child process with a time limit and a
memory ceiling, so that a hostile file costs one bounded child, never the
worker (or, with the embedded in-process default, the web worker) that asked.

Uploads are never read in a web request: the request stores the file and
queues a job, and the job calls ``read_upload``. The child runs
``upload_reader.py`` (which imports nothing of the project) under
``UPLOAD_PARSE_MEMORY_LIMIT_MB`` of address space and
``UPLOAD_PARSE_TIME_LIMIT`` seconds of CPU, and is killed once
``UPLOAD_PARSE_CLOCK_LIMIT`` seconds have passed on the clock. The CPU limit
bounds what a file may cost; the clock limit is looser, because on a busy
machine a legitimate file gets a fraction of a CPU (the largest import
template, 50,000 rows, takes 7 s of CPU and 31 s on the clock with six
processes per core).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext_noop

from .errors import AppError
from .stored_texts import stored_text
from .upload_reader import MEMORY_EXIT, Limits, child_options

READER = Path(__file__).with_name("upload_reader.py")
DEFAULT_TIME_LIMIT = 30
DEFAULT_CLOCK_LIMIT = 120
DEFAULT_MEMORY_LIMIT_MB = 512

# A refusal is read in a worker and kept as the job's error: in English, shown
# translated (stored_texts.shown_error). The reader child imports nothing of
# the project, so its own commonest refusals are registered here, word for word.
NO_ANSWER = stored_text(gettext_noop("This file could not be read (the reader gave no answer)."))
UNREADABLE = stored_text(gettext_noop("This file could not be read (%(detail)s)."))
TOO_SLOW = stored_text(gettext_noop("The file took longer than %(seconds)s s to read; it was stopped. Split it into smaller files."))
TOO_SLOW_BUSY = stored_text(gettext_noop(
    "The file took longer than %(seconds)s s to read; it was stopped. Split it into smaller files, or try again later."
))
TOO_BIG = stored_text(gettext_noop("The file needs more than %(mb)s MB to read; it was stopped. Split it into smaller files."))
READER_REFUSALS = (
    stored_text(gettext_noop("Upload an .xlsx workbook or a UTF-8 .csv file.")),
    stored_text(gettext_noop("Upload a UTF-8 .csv or .txt file.")),
    stored_text(gettext_noop("This is not a well-formed xlsx file (it is not a valid zip archive).")),
    stored_text(gettext_noop("Row %(line)s: the file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")),
    stored_text(gettext_noop("Row %(line)s: the file contains a NUL byte; it is not a text CSV file. Upload a UTF-8 CSV or text file.")),
    stored_text(gettext_noop("Row %(line)s: malformed CSV (%(detail)s).")),
    stored_text(gettext_noop("This xlsx is encrypted (%(name)s); save it without a password.")),
)


class UploadRefused(AppError):
    """The uploaded file cannot be read; the message says why and names the limit."""

    code = "unreadable_file"


def time_limit() -> int:
    return int(getattr(settings, "UPLOAD_PARSE_TIME_LIMIT", DEFAULT_TIME_LIMIT))


def clock_limit() -> int:
    return int(getattr(settings, "UPLOAD_PARSE_CLOCK_LIMIT", DEFAULT_CLOCK_LIMIT))


def memory_limit_mb() -> int:
    return int(getattr(settings, "UPLOAD_PARSE_MEMORY_LIMIT_MB", DEFAULT_MEMORY_LIMIT_MB))


def read_upload(*, name: str, data: bytes, limits: Limits, formats: tuple[str, ...] = ("xlsx", "csv"), delimiter: str | None = ",",
                txt: str = "csv") -> list[list[str]]:
    """The rows of an uploaded table (see ``upload_reader.read_table`` for
    ``formats``, ``delimiter`` and ``txt``), read in a child process. Raises
    UploadRefused for a file the reader refuses, and for one that needs more
    time or memory than the limits allow (the child is then killed)."""
    seconds, clock, memory_mb = time_limit(), clock_limit(), memory_limit_mb()
    header = child_options(name=name, limits=limits, seconds=seconds, memory_mb=memory_mb, formats=formats, delimiter=delimiter, txt=txt)
    try:
        # -I: no user site, no environment variables, no current directory on
        # the path; the reader needs the standard library and openpyxl only.
        child = subprocess.run(  # noqa: S603 (our own interpreter and script, no shell)
            [sys.executable, "-I", str(READER)], input=header + data, capture_output=True, timeout=clock, check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise UploadRefused(too_slow(clock, busy=True)) from None
    if child.returncode == 0:
        try:
            answer = json.loads(child.stdout)
        except ValueError:
            answer = {"error": NO_ANSWER}
        if "error" in answer:
            raise UploadRefused(answer["error"])
        return answer["rows"]
    if child.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise UploadRefused(too_slow(seconds))
    if child.returncode == MEMORY_EXIT or b"MemoryError" in child.stderr or child.returncode in (-signal.SIGABRT, -signal.SIGSEGV):
        raise UploadRefused(too_big(memory_mb))
    last = child.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {child.returncode}"]
    raise UploadRefused(UNREADABLE % {"detail": last[0][:200]})


def too_slow(seconds: int, *, busy: bool = False) -> str:
    if busy:  # the clock ran out before the CPU limit: the machine may be busy rather than the file too large
        return TOO_SLOW_BUSY % {"seconds": seconds}
    return TOO_SLOW % {"seconds": seconds}


def too_big(memory_mb: int) -> str:
    return TOO_BIG % {"mb": memory_mb}
