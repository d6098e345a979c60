from django.apps import AppConfig


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = "Organisation"

    def ready(self):
        from . import signals  # noqa: F401 (connects the receivers)
