"""Operations that change enrollment state, one module per operation.

- ``batch.py``: enroll or unenroll a list of usernames and emails in one course
  (``enrollment_batch_update``), in a fixed number of queries whatever its size,
  as resolve → lock → decide → write (identifiers become accounts through
  ``accounts.selectors.users_by_identifier``), the size cap. Every other way in (codes, the organisation,
  My Team, the admin) goes through it.
- ``batch_decide.py``: the batch's decide step, a pure function from the
  current states to the changes and the per-identifier outcomes (tested
  without a database), and the result types (``IdentifierResult``, ``PersonState``).
- ``self_service.py``: a learner enrolling or unenrolling themself, and
  ``allowance_consume_for``: how an auto-enroll allowance turns into an
  enrollment when the account's email is confirmed (called from ``signals.py``).
- ``outbox.py``: delivering the notification emails batches wrote to the
  outbox (``notifications_send``), rendered at send time by
  ``enrollments/notifications.py`` from ``templates/enrollments/email/``.
- ``batch_preview.py``: what a batch would do, with nothing written, and its
  fingerprint; ``previews.py``: previews kept until confirmed (once), large
  ones previewed by a worker, abandoned ones swept (``preview_*``, ``previews_sweep``).
- ``jobs.py``: a batch recorded as a job: run in the request, or queued and run
  by a worker in chunks with a results CSV (``batch_job_*``).
- ``bulk_api.py``: the REST API's bulk enroll over several courses (cohorts,
  their check, the dry run), and its queued form (``enrollment_bulk_update``,
  ``bulk_cohorts_check``, ``bulk_enroll_job_*``).
- ``invitations.py``: resend and revoke a course's open invitations
  (``allowance_resend``, ``allowance_revoke``), as the invitations table does.
- ``roster.py``: the learners table's row and bulk actions (unenroll, enroll
  again, change mode, move to a cohort) over chosen enrollments
  (``roster_apply``), written through the batch's write step, and their job
  above ``ENROLLMENT_SYNC_LIMIT`` rows (``roster_job_run``); its decide step
  is ``roster_decide.py``, its preview (nothing written) ``roster_preview.py``.
- ``course_settings.py``: a course's own settings (``course_settings_update``,
  validated by the pure ``course_settings_decide``, with a history row per
  change), ``enrollment_key_generate``, and its cohorts (``cohort_create``,
  ``cohort_rename``, ``cohort_delete``: members fall back to no cohort, audited).
- ``counts.py``: the consistency check of the enrollment counters the
  database's triggers keep (``enrollment_counts_check``; ``enrollments/counters.py``).
- ``expiry.py``: the end of a period of access (``enrollments_expire``, the
  beat's ``expire_enrollments``): ended like an unenroll, or renewed when a
  higher app says the enrollment recurs (``renewal_source_register``).
- ``reminders.py``: the expiry reminders to learners and the course team's
  summary (``enrollments_remind``), once per enrollment and period, none for
  an enrollment a higher app says renews (``renewing_source_register``).
- ``team.py``: course team members are enrolled (``course_team_member_add``,
  ``course_create_with_admin``) over courses' plain role services.

Every public name is importable from ``enrollments.services`` itself; the
tunables (``BATCH_CHUNK`` and the like) live in the module that uses them.
"""

from ..models import Outcome
from .batch import (
    BatchResult,
    TooManyIdentifiers,
    check_identifier_count,
    enrollment_batch_update,
)
from .batch_accounts import AfterWrite, enrollment_accounts_enroll, enrollment_accounts_unenroll, enrollment_emails_invite
from .batch_decide import ACTIONS, ENROLL, UNENROLL, IdentifierResult, PersonState, batch_decide
from .bulk_api import ApiResults, UnknownCohorts, bulk_cohorts_check, bulk_enroll_job_create, bulk_enroll_job_run, enrollment_bulk_update
from .counts import CountsDrift, enrollment_counts_check
from .course_settings import (
    CapBelowCount,
    cohort_create,
    cohort_delete,
    cohort_rename,
    course_settings_update,
    enrollment_key_generate,
    settings_change_summary,
)
from .expiry import ExpiryRun, enrollments_expire, renewal_source_register
from .invitations import InvitationResult, allowance_resend, allowance_revoke
from .jobs import RESULTS_CSV_HEADER, batch_job_create, batch_job_run, batch_job_run_inline
from .outbox import notifications_requeue_stale, notifications_send
from .previews import PreviewAlreadyConfirmed, PreviewExpired, preview_confirm, preview_job_create, preview_job_run, previews_sweep
from .reminders import ReminderRun, enrollments_remind, renewing_source_register
from .roster import RosterAction, RosterPreviewStale, RosterResult, roster_apply, roster_job_run, roster_preview, roster_result_message
from .self_service import SelfEnrollmentRefused, WrongEnrollmentKey, allowance_consume_for, enrollment_self_enroll, enrollment_self_unenroll
from .team import course_create_with_admin, course_team_member_add
from .undo import undo_job_run, undo_start

__all__ = [
    "ACTIONS", "ENROLL", "RESULTS_CSV_HEADER", "UNENROLL", "ApiResults",
    "BatchResult", "CapBelowCount", "CountsDrift", "IdentifierResult", "InvitationResult", "Outcome", "PersonState", "RosterAction", "RosterResult",
    "SelfEnrollmentRefused", "TooManyIdentifiers", "UnknownCohorts", "WrongEnrollmentKey",
    "allowance_consume_for", "allowance_resend", "allowance_revoke", "batch_decide", "batch_job_create", "batch_job_run", "batch_job_run_inline",
    "bulk_cohorts_check", "bulk_enroll_job_create", "bulk_enroll_job_run",
    "AfterWrite", "check_identifier_count", "cohort_create", "enrollment_accounts_enroll", "enrollment_accounts_unenroll", "enrollment_emails_invite", "cohort_delete", "cohort_rename", "course_create_with_admin", "course_settings_update", "settings_change_summary",
    "enrollment_key_generate", "course_team_member_add", "enrollment_batch_update", "enrollment_counts_check", "enrollment_bulk_update", "enrollment_self_enroll",
    "enrollment_self_unenroll", "notifications_requeue_stale", "notifications_send",
    "RosterPreviewStale", "roster_apply", "roster_job_run", "roster_preview", "roster_result_message", "undo_job_run", "undo_start",
    "ExpiryRun", "ReminderRun", "enrollments_expire", "enrollments_remind", "renewal_source_register", "renewing_source_register",
    "PreviewAlreadyConfirmed", "PreviewExpired", "preview_confirm", "preview_job_create", "preview_job_run", "previews_sweep",
]
