"""Pending batch previews, kept in the session until confirmed.

Confirm must apply what the preview showed without the list being sent
again, so the preview's distinct identifiers, options and outcomes are kept
server-side, keyed by a random token that the preview page and its Confirm
form carry. The session holds at most ``KEEP`` previews (the oldest goes
first), each of at most ``ENROLLMENT_SYNC_LIMIT`` identifiers: larger lists
are not previewed in the request. A token works only in the session that
made it and for the course it was made for."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

from .services.batch_preview import BatchPreview

SESSION_KEY = "batch_previews"
KEEP = 3


@dataclass
class PendingPreview:
    course_id: int
    action: str
    auto_enroll: bool
    email_students: bool
    reason: str
    shown: list[list[str]]  # [identifier, outcome key] in the order shown
    fingerprint: str
    upload_job: str = ""  # the public id of the read upload the identifiers came from, if any

    @property
    def identifiers(self) -> list[str]:
        return [identifier for identifier, _ in self.shown]

    def show(self, preview: BatchPreview) -> None:
        """Record ``preview`` as what the page now shows, and so what Confirm applies."""
        self.shown = [[r.identifier, str(r.outcome)] for r in preview.results]
        self.fingerprint = preview.fingerprint


def pending_save(request, pending: PendingPreview, token: str | None = None) -> str:
    """Keep ``pending`` in the session (under ``token``, or a new one) and return its token."""
    token = token or secrets.token_urlsafe(16)
    store = dict(request.session.get(SESSION_KEY, {}))
    store.pop(token, None)
    store[token] = asdict(pending)
    while len(store) > KEEP:
        store.pop(next(iter(store)))
    request.session[SESSION_KEY] = store
    return token


def pending_get(request, token: str, *, course_id: int) -> PendingPreview | None:
    """The session's pending preview under ``token`` for this course, or None."""
    data = request.session.get(SESSION_KEY, {}).get(token)
    if data is None or data.get("course_id") != course_id:
        return None
    return PendingPreview(**data)


def pending_drop(request, token: str) -> None:
    store = dict(request.session.get(SESSION_KEY, {}))
    if store.pop(token, None) is not None:
        request.session[SESSION_KEY] = store
