"""What the organisation pages share: the platform-administrators-only
decorator, and running small work in the request and big work as a job."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..selectors import org_admin_required
from ..services import org_job_create
from ..texts import count_text, job_summary_text


def admin_view(view):
    """Log in, then platform administrators only (403 for everyone else)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        org_admin_required(request)
        return view(request, *args, **kwargs)

    return wrapper


def sync_limit() -> int:
    return getattr(settings, "ORGANISATION_SYNC_LIMIT", 5000)


def job_or_inline(request, *, total: int, kind: str, payload: dict, run):
    """Small work runs in the request; above the limit it becomes a job with a progress bar."""
    if total > sync_limit():
        job = org_job_create(kind=kind, payload=payload, total=total, actor=request.user)
        messages.info(request, count_text(total, ngettext("%(count)s enrollment change is running in the background.",
                                                          "%(count)s enrollment changes are running in the background.", total)))
        return job
    done = run()
    messages.success(request, _("Done: %(summary)s") % {"summary": job_summary_text(done)})
    return None
