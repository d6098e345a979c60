"""Receivers that hand account events to services (no writes here)."""

from allauth.account.signals import user_signed_up
from django.dispatch import receiver

from enrollments.services.undo import operation_undone


@receiver(user_signed_up)
def apply_rules_to_new_account(request, user, **kwargs):
    from .services import user_joined

    user_joined(user=user)


@receiver(operation_undone)
def restore_origins_on_undo(sender, course_id, operation_id, undo_operation_id, user_ids, **kwargs):
    from .services.plans import origins_restore

    origins_restore(course_id=course_id, operation_id=operation_id, undo_operation_id=undo_operation_id, user_ids=user_ids)
