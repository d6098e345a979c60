"""Reads about accounts: who an identifier names, what names a person, API tokens.

``users_by_identifier`` is the one place where usernames and emails become
accounts, and ``identifier_for`` the one place where an account becomes an
identifier; the batch, the admin, the API, the organisation's pages and
imports, course teams and codes all go through these two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models.functions import Lower
from rest_framework.authtoken.models import Token

from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.identifiers import Identifier, Kind, parse_identifiers

from .models import User
from .usernames import username_skeleton

# What callers read of a resolved account: enough to name it, enroll it and
# email it. A narrow row keeps a 100,000-identifier batch light.
RESOLVED_FIELDS = ("id", "username", "email", "email_key", "first_name", "last_name", "is_active")


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An active account as ``users_by_identifier(..., as_rows=True)`` gives
    it: the fields a batch reads, without the cost of a model instance (for
    tens of thousands of identifiers, building ``User`` objects was a tenth
    of a batch's time)."""

    pk: int
    username: str
    email: str
    email_key: str
    first_name: str
    last_name: str

    @property
    def display_name(self) -> str:
        """As ``User.display_name``: the full name when there is one, else the username."""
        return f"{self.first_name} {self.last_name}".strip() or self.username


def users_by_identifier(
    identifiers: Iterable[Identifier], *, active_only: bool = True, as_rows: bool = False,
) -> list[tuple[Identifier, User | None]] | list[tuple[Identifier, AccountRow | None]]:
    """Each parsed identifier (``enrollment_site.lib.identifiers.parse_identifiers``)
    with the account it names, or None, in the order given.

    The case rules, here and nowhere else:

    - an email matches the account with the same email key
      (``enrollment_site.lib.emails.email_key``: case ignored, the domain
      compared in its IDNA (punycode) form), so ``Ana@Bücher.example`` names
      ``ana@xn--bcher-kva.example``; of two accounts flagged as sharing a key,
      the older;
    - a username matches whatever its case; of two accounts whose usernames
      differ only in case, the one spelled exactly as given wins, else the
      oldest;
    - an invalid identifier names nobody.

    Only active accounts are found unless ``active_only`` is False. With
    ``as_rows`` the accounts are ``AccountRow`` values rather than ``User``
    instances. Two queries at most (one for usernames, one for emails),
    whatever the number of identifiers."""
    identifiers = list(identifiers)
    usernames = {i.key for i in identifiers if i.kind == Kind.USERNAME}
    emails = {i.key for i in identifiers if i.kind == Kind.EMAIL}
    accounts = User.objects.order_by("pk")
    if active_only:
        accounts = accounts.filter(is_active=True)
    by_username: dict[str, list] = {}
    by_email: dict[str, object] = {}
    if as_rows:
        columns = ("id", "username", "email", "email_key", "first_name", "last_name")
        if usernames:
            for *values, key in accounts.annotate(username_key=Lower("username")).filter(username_key__any_of=usernames).values_list(
                *columns, "username_key"
            ):
                by_username.setdefault(key, []).append(AccountRow(*values))
        if emails:
            for values in accounts.filter(email_key__any_of=emails).values_list(*columns):
                by_email.setdefault(values[3], AccountRow(*values))
    else:
        accounts = accounts.only(*RESOLVED_FIELDS)
        if usernames:
            for user in accounts.annotate(username_key=Lower("username")).filter(username_key__any_of=usernames):
                by_username.setdefault(user.username_key, []).append(user)
        if emails:
            for account in accounts.filter(email_key__any_of=emails):
                by_email.setdefault(account.email_key, account)
    return [(ident, _pick(ident, by_username, by_email)) for ident in identifiers]


def _pick(ident: Identifier, by_username: dict[str, list], by_email: dict[str, object]):
    if ident.kind == Kind.EMAIL:
        return by_email.get(ident.key)
    if ident.kind == Kind.USERNAME:
        candidates = by_username.get(ident.key) or []
        return next((u for u in candidates if u.username == ident.text), candidates[0] if candidates else None)
    return None


def user_by_identifier(text: str, *, active_only: bool = True):
    """The account one typed username or email names, or None (the rules of
    ``users_by_identifier``); surrounding spaces are ignored."""
    parsed = parse_identifiers([(text or "").strip()])
    if len(parsed) != 1:
        return None
    return users_by_identifier(parsed, active_only=active_only)[0][1]


def user_by_email(address: str, *, exclude_pk: int | None = None) -> User | None:
    """The account whose email has the key of ``address`` (any case, the domain
    in Unicode or punycode), active or not, other than ``exclude_pk``; of two
    accounts flagged as sharing the key, the older. One query."""
    accounts = User.objects.filter(email_key=email_key(address)).order_by("pk")
    if exclude_pk is not None:
        accounts = accounts.exclude(pk=exclude_pk)
    return accounts.first()


def user_lookalike(username: str, *, exclude_pk: int | None = None) -> User | None:
    """An account, other than ``exclude_pk``, whose username looks like
    ``username`` (the same skeleton, ``accounts.usernames.username_skeleton``):
    ``learner1`` for ``Iearner1``, ``lеarner1`` or ``LEARNER1``. One query."""
    accounts = User.objects.filter(username_skeleton=username_skeleton(username)).order_by("pk")
    if exclude_pk is not None:
        accounts = accounts.exclude(pk=exclude_pk)
    return accounts.first()


def identifier_for(user) -> str:
    """The identifier that names ``user`` (an account, or anything with a
    ``username`` and an ``email``): the username, unless it looks like an
    email, then the address (unique per account)."""
    return user.email if "@" in user.username else user.username


def api_token_for(*, user) -> Token | None:
    return Token.objects.filter(user=user).first()
