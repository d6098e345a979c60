"""Re-key every allowance with ``enrollment_site.lib.emails.email_key``.

Allowances written by the batch already had the punycode key; those saved one
by one had the address only lower-cased (``idn@пример.рф``), so the same
mailbox could hold two allowances for one course, and the person who registered
matched neither or only one. An allowance whose key changes and meets another
for the same course and key is merged into the earliest of them (by creation,
then id): that one is kept with its address and author, auto-enrolls if any of
them did and counts as used if any was; the others are deleted, each logged."""

import logging

from django.db import migrations

from enrollment_site.lib.emails import email_key

logger = logging.getLogger("enrollments.migrations")
CHUNK = 2000


def rekey_allowances(apps, schema_editor=None) -> list[int]:
    """Give every allowance its key, merging those that then collide (see the
    module). Returns the ids deleted by merging. Reads all rows once in id
    chunks; writes only the rows whose key changes and their partners."""
    Allowance = apps.get_model("enrollments", "Allowance")
    changed: dict[int, str] = {}
    last_pk = 0
    while True:
        rows = list(Allowance.objects.filter(pk__gt=last_pk).order_by("pk").values_list("pk", "email", "email_key")[:CHUNK])
        if not rows:
            break
        last_pk = rows[-1][0]
        changed.update((pk, key) for pk, email, old in rows if (key := email_key(email)) != old)
    if not changed:
        return []
    # Every row sharing a (course, key) with a changed row: the changed rows and
    # those already holding the key.
    ids = list(changed)
    groups: dict[tuple[int, str], list] = {}
    for start in range(0, len(ids), CHUNK):
        for row in Allowance.objects.filter(pk__in=ids[start:start + CHUNK]):
            groups.setdefault((row.course_id, changed[row.pk]), []).append(row)
    new_keys = sorted(set(changed.values()))
    for start in range(0, len(new_keys), CHUNK):
        for row in Allowance.objects.filter(email_key__in=new_keys[start:start + CHUNK]):
            if row.pk not in changed and (row.course_id, row.email_key) in groups:
                groups[(row.course_id, row.email_key)].append(row)
    deleted: list[int] = []
    keepers = []
    for (course_id, key), rows in groups.items():
        rows.sort(key=lambda r: (r.created, r.pk))
        keeper, others = rows[0], rows[1:]
        if others:
            keeper.auto_enroll = any(r.auto_enroll for r in rows)
            used = [r.used_at for r in rows if r.used_at is not None]
            keeper.used_at = min(used) if used else None
            for other in others:
                logger.warning(
                    "Allowance %s (%s, course %s, auto_enroll=%s, used_at=%s) merged into allowance %s (%s): same email key %s.",
                    other.pk, other.email, course_id, other.auto_enroll, other.used_at, keeper.pk, keeper.email, key,
                )
            deleted.extend(r.pk for r in others)
        keeper.email_key = key
        keepers.append(keeper)
    # Deletions first, so that no keeper meets a partner still holding its key.
    Allowance.objects.filter(pk__in=deleted).delete()
    Allowance.objects.bulk_update(keepers, ["email_key", "auto_enroll", "used_at"], batch_size=CHUNK)
    return deleted


class Migration(migrations.Migration):
    dependencies = [
        ("enrollments", "0012_rosterjob_takeover"),
    ]

    operations = [
        migrations.RunPython(rekey_allowances, migrations.RunPython.noop, elidable=False),
    ]
