"""Receivers that hand account events to services (no writes here)."""

from allauth.account.signals import user_signed_up
from django.dispatch import receiver


@receiver(user_signed_up)
def apply_rules_to_new_account(request, user, **kwargs):
    from .services import user_joined

    user_joined(user=user)
