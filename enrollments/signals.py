"""Receivers that hand allauth's events to services (no writes here)."""

from allauth.account.signals import email_confirmed
from django.dispatch import receiver


@receiver(email_confirmed)
def consume_allowances_on_activation(request, email_address, **kwargs):
    from .services import allowance_consume_for

    allowance_consume_for(user=email_address.user)
