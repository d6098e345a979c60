"""Email backend of the embedded default: every message is written to a file
under ``EMAIL_FILE_PATH`` and echoed to the console, so that someone running the
app without an SMTP server still sees (and can click) every activation link."""

import sys

from django.core.mail.backends.filebased import EmailBackend as FileBackend


class FileAndConsoleEmailBackend(FileBackend):
    def write_message(self, message):
        super().write_message(message)
        msg = message.message()
        sys.stdout.write(msg.as_bytes().decode(errors="replace"))
        sys.stdout.write("\n" + "-" * 79 + "\n")
        sys.stdout.flush()
