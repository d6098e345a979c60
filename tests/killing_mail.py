"""An SMTP backend for worker tests that dies: the worker kills itself
(SIGKILL) as its outbox is about to end message ``KILLING_MAIL_AT`` (counted
over all the delivery's connections). By then the previous message's mark has
been written to the database and its reply not yet read, the moment a worker
that dies must not lose the mark."""

import os
import signal

from enrollment_site.lib.mail import SMTPEmailBackend

_ENDS = {"n": 0}


class EmailBackend(SMTPEmailBackend):
    def finish(self, meanwhile=None):
        _ENDS["n"] += 1
        if _ENDS["n"] == int(os.environ.get("KILLING_MAIL_AT", "6")):
            os.kill(os.getpid(), signal.SIGKILL)
        super().finish(meanwhile)
