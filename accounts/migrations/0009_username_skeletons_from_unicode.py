"""Recompute every account's username skeleton: look-alikes now come from
Unicode's confusables data (confusable-homoglyphs) instead of a small table, so
stored skeletons must be compared with new ones computed the same way.

Accounts that now look like one another are kept as they are, as when skeletons
were introduced: the rule is for new usernames."""

from django.db import migrations

from accounts.usernames import username_skeleton

CHUNK = 2000


def recompute_skeletons(apps, schema_editor=None) -> int:
    """Set ``username_skeleton`` from ``username`` on every account, chunk by
    chunk in key order: one read and at most one bulk update per chunk. Returns
    how many changed. Safe to run again."""
    User = apps.get_model("accounts", "User")
    changed = 0
    last_pk = 0
    while True:
        chunk = list(User.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", "username", "username_skeleton")[:CHUNK])
        if not chunk:
            return changed
        last_pk = chunk[-1].pk
        stale = []
        for user in chunk:
            skeleton = username_skeleton(user.username)
            if user.username_skeleton != skeleton:
                user.username_skeleton = skeleton
                stale.append(user)
        User.objects.bulk_update(stale, ["username_skeleton"])
        changed += len(stale)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_user_search_trigram"),
    ]

    operations = [
        migrations.RunPython(recompute_skeletons, migrations.RunPython.noop, elidable=False),
    ]
