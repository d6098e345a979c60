from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .rules import is_platform_admin as platform_admin_rule


class AccountUserManager(UserManager["User"]):
    def get_by_natural_key(self, username):
        return self.get(username=username)


class User(AbstractUser):
    """A person. The email is required and unique whatever its case: the same
    address in another case is the same person (enforced by the database)."""

    email = models.EmailField("email address", max_length=320)
    # Person attributes that rules match on. Company and department are
    # organisation units, so the app of units (a layer above) keeps them: Placement.
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    language = models.CharField(max_length=10, blank=True, help_text="Short code, such as en or nl.")
    date_added = models.DateField(default=timezone.localdate)

    objects: ClassVar[AccountUserManager] = AccountUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["date_joined"], name="accounts_user_joined_idx"),
            # batch enrollment matches usernames case-insensitively
            models.Index(Lower("username"), name="accounts_user_username_ci"),
        ]

    def __str__(self):
        return self.username

    @property
    def display_name(self) -> str:
        """How the site addresses the person, in emails too: the full name when
        there is one, else the username."""
        return self.get_full_name() or self.username

    @property
    def is_platform_admin(self) -> bool:
        """For templates: the rule of :func:`accounts.rules.is_platform_admin`."""
        return platform_admin_rule(self)
