from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = _("Organisation")

    def ready(self):
        from enrollments.services import renewal_source_register, renewing_source_register

        # reasons registers the stored texts shown translated; signals connects the receivers.
        from . import reasons, signals  # noqa: F401
        from .selectors.terms import recurring_months, recurring_people

        # The expiry run renews, rather than ends, what a recurring assignment or rule made,
        # so the reminder scan does not tell those learners that their access ends.
        renewal_source_register(recurring_months)
        renewing_source_register(recurring_people)
