"""An email backend for worker tests that stalls: it writes the first
``STALLING_MAIL_AFTER`` messages of a connection as the file backend does, then
hangs on the next one (for a minute), so a test can kill the worker with a
message in flight at a known point of a chunk."""

import os
import time

from django.core.mail.backends.filebased import EmailBackend as FileBackend


class EmailBackend(FileBackend):
    def send_messages(self, email_messages):
        self._sent_here = getattr(self, "_sent_here", 0)
        if self._sent_here >= int(os.environ.get("STALLING_MAIL_AFTER", "3")):
            time.sleep(60)  # the test kills the worker meanwhile
        self._sent_here += len(email_messages)
        return super().send_messages(email_messages)
