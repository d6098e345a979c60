"""Expiry becomes a date (the last day a code works) instead of an instant.

The generate form stored "works until the end of day D" as D+1 00:00 UTC, which
the pages then showed as the next day at 00:00. Each stored instant X becomes
the date of the last instant the code worked, X minus a microsecond: read in
UTC for values at exactly 00:00 UTC (what the form wrote for day D, whatever the
site's time zone), and in the site's time zone for any other value (written by
a script), so that such a code never stops working earlier than it did.
Rows share their batch's value, so this is one UPDATE per distinct expiry."""

import datetime
import zoneinfo

from django.conf import settings
from django.db import migrations, models

EXPIRES_ON_HELP = "The last day it works, until the end of that day in the site's time zone; blank for never."


def expiry_day(instant: datetime.datetime, site_tz) -> datetime.date:
    in_utc = instant.astimezone(datetime.UTC)
    zone = datetime.UTC if in_utc.time() == datetime.time.min else site_tz
    return (instant - datetime.timedelta(microseconds=1)).astimezone(zone).date()


def end_of_day(day: datetime.date, site_tz) -> datetime.datetime:
    return datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min, tzinfo=site_tz)


def _convert(apps, forward: bool) -> None:
    site_tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    source, target = ("expires_at", "expires_on") if forward else ("expires_on", "expires_at")
    convert = expiry_day if forward else end_of_day
    for model_name in ("CodeBatch", "EnrollmentCode"):
        model = apps.get_model("codes", model_name)
        values = model.objects.exclude(**{source: None}).order_by().values_list(source, flat=True).distinct()
        for value in list(values):
            model.objects.filter(**{source: value}).update(**{target: convert(value, site_tz)})


def forwards(apps, schema_editor):
    _convert(apps, forward=True)


def backwards(apps, schema_editor):
    _convert(apps, forward=False)


class Migration(migrations.Migration):
    dependencies = [
        ("codes", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="codebatch",
            name="expires_on",
            field=models.DateField(blank=True, null=True, help_text=EXPIRES_ON_HELP),
        ),
        migrations.AddField(
            model_name="enrollmentcode",
            name="expires_on",
            field=models.DateField(blank=True, null=True, help_text=EXPIRES_ON_HELP),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="codebatch", name="expires_at"),
        migrations.RemoveField(model_name="enrollmentcode", name="expires_at"),
    ]
