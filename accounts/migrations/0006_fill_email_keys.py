"""Fill every account's email key and username skeleton.

Two accounts whose addresses differ only in spelling (``idn@пример.рф`` and
``idn@xn--e1afmkfd.xn--p1ai``, or a case the old rule missed) get the same key.
Nothing is deleted: the older account keeps the key, the newer is flagged
``email_key_clash`` (listed in Django admin under that filter, and logged here)
for a platform administrator to give it an address of its own. The unique rule
(0007) leaves flagged accounts out, so this migration never fails on them."""

import logging

from django.db import migrations

from accounts.usernames import username_skeleton
from enrollment_site.lib.emails import email_key

logger = logging.getLogger("accounts.migrations")
CHUNK = 2000


def fill_email_keys(apps, schema_editor=None) -> list[int]:
    """Set ``email_key`` and ``username_skeleton`` on every account, oldest
    first, chunk by chunk; flag an account whose key an older account already
    holds. Returns the ids flagged. Safe to run again (keys already right stay)."""
    User = apps.get_model("accounts", "User")
    flagged: list[int] = []
    last_pk = 0
    while True:
        chunk = list(User.objects.filter(pk__gt=last_pk).order_by("pk")[:CHUNK])
        if not chunk:
            return flagged
        last_pk = chunk[-1].pk
        keys = {user.pk: email_key(user.email) for user in chunk}
        # Held by an account outside this chunk (older, already filled; or any
        # account whose stored key is already this one).
        held = dict(
            User.objects.filter(email_key__in=set(keys.values()), email_key_clash=False)
            .exclude(pk__in=keys)
            .values_list("email_key", "pk")
        )
        for user in chunk:
            key = keys[user.pk]
            owner = held.setdefault(key, user.pk)
            user.email_key = key
            user.email_key_clash = owner != user.pk
            user.username_skeleton = username_skeleton(user.username)
            if user.email_key_clash:
                flagged.append(user.pk)
                logger.warning(
                    "Accounts %s and %s have the same email address (key %s): both kept; "
                    "account %s is flagged 'email shared with an older account' for an administrator to resolve.",
                    owner, user.pk, key, user.pk,
                )
        User.objects.bulk_update(chunk, ["email_key", "email_key_clash", "username_skeleton"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_user_email_key"),
    ]

    operations = [
        migrations.RunPython(fill_email_keys, migrations.RunPython.noop, elidable=False),
    ]
