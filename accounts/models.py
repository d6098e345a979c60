from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enrollment_site.lib.emails import email_key

from .rules import is_platform_admin as platform_admin_rule
from .time_zones import validate_time_zone
from .usernames import SKELETON_MAX_LENGTH, username_skeleton


class UserQuerySet(models.QuerySet["User"]):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): derive the keys here, so that no way of
        # writing accounts leaves them empty.
        objs = list(objs)
        for user in objs:
            user.derive_keys()
        return super().bulk_create(objs, *args, **kwargs)


class AccountUserManager(UserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    def get_by_natural_key(self, username):
        return self.get(username=username)


class User(AbstractUser):
    """A person. The email is required and unique by its key
    (``enrollment_site.lib.emails.email_key``): the same address in another
    case, or with its domain spelled in Unicode or in punycode, is the same
    person (enforced by the database)."""

    email = models.EmailField(_("email address"), max_length=320)
    # Derived from the email and the username (derive_keys, on save and bulk_create):
    # what lookups compare.
    email_key = models.CharField(max_length=320, editable=False, db_index=True)
    email_key_clash = models.BooleanField(
        _("email shared with an older account"), default=False, editable=False,
        help_text=_("Found when email keys were introduced: an older account has the same address in another spelling. "
                    "Both are kept; give this one its own address (the flag clears when the address changes)."),
    )
    # Looked up at sign-up to refuse look-alike usernames (accounts/usernames.py).
    username_skeleton = models.CharField(max_length=SKELETON_MAX_LENGTH, editable=False, db_index=True)
    # Person attributes that rules match on. Company and department are
    # organisation units, so the app of units (a layer above) keeps them: Placement.
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports",
                                verbose_name=_("manager"))
    language = models.CharField(_("language"), max_length=10, blank=True, help_text=_("Short code, such as en or nl."))
    # Blank: the site's TIME_ZONE. Activated for each of the person's requests (accounts/middleware.py).
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, validators=[validate_time_zone],
        help_text=_("Dates and times are shown in this zone, such as Europe/Amsterdam; blank: the site's."),
    )
    date_added = models.DateField(_("date added"), default=timezone.localdate)

    objects: ClassVar[AccountUserManager] = AccountUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            # Accounts that already shared a key when keys were introduced are
            # kept and flagged rather than deleted (migration 0006), so the rule
            # holds for every other account.
            models.UniqueConstraint(fields=["email_key"], condition=Q(email_key_clash=False), name="accounts_user_email_key_unique"),
        ]
        indexes = [
            models.Index(fields=["date_joined"], name="accounts_user_joined_idx"),
            # batch enrollment matches usernames case-insensitively
            models.Index(Lower("username"), name="accounts_user_username_ci"),
        ]

    def __str__(self):
        return self.username

    def derive_keys(self) -> None:
        """Set the columns derived from the email and the username."""
        key = email_key(self.email)
        if key != self.email_key:
            # A new address is a new key: a clash found with the old one no longer holds.
            self.email_key, self.email_key_clash = key, False
        self.username_skeleton = username_skeleton(self.username)

    def save(self, *args, **kwargs):
        self.derive_keys()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            derived = {"email": ("email_key", "email_key_clash"), "username": ("username_skeleton",)}
            kwargs["update_fields"] = {*update_fields, *(f for name in update_fields for f in derived.get(name, ()))}
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        """How the site addresses the person, in emails too: the full name when
        there is one, else the username."""
        return self.get_full_name() or self.username

    @property
    def is_platform_admin(self) -> bool:
        """For templates: the rule of :func:`accounts.rules.is_platform_admin`."""
        return platform_admin_rule(self)
