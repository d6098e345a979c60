"""The application's errors: what a service raises when the user asked for
something that cannot be done, with a message they can act on.

Services raise an ``AppError`` subclass (never a bare ``ValueError``,
``RuntimeError`` or a hand-raised ``IntegrityError`` for a user-facing
condition, and never ``Http404``: that belongs to views). Each is translated
in one place per interface: pages by ``AppErrorMiddleware`` (a 404 for
``NotFound``, otherwise the message on the page the user came from) unless the
view handles it first, the API by ``api_exception_handler`` (JSON with the
status below). Refusals for permission are Django's ``PermissionDenied``, never
the built-in ``PermissionError``: that is an ``OSError``, which task retries
catch as a transient fault.
"""

from __future__ import annotations

from typing import cast

from django.utils.translation import gettext_lazy as _


class AppError(Exception):
    """A user-facing refusal: ``message`` says why, ``code`` names it for
    programs, ``field`` the input it concerns (None: the request as a whole),
    ``status`` the HTTP status the API answers with."""

    status = 400
    code = "invalid"
    # Class-level messages are lazy (typed as the str they become): each raise reads
    # them in the language active then, the person's.
    message: str = cast(str, _("This cannot be done."))

    def __init__(self, message: str | None = None, *, code: str | None = None, field: str | None = None):
        self.message = str(message or self.message)
        super().__init__(self.message)
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        return self.message


class NotFound(AppError):
    """What the user named does not exist (404)."""

    status = 404
    code = "not_found"
    message = cast(str, _("Not found."))


class Conflict(AppError):
    """The request clashes with the current state; trying again may work (409)."""

    status = 409
    code = "conflict"
    message = cast(str, _("This could not be done now; try again."))
