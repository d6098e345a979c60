from django.conf import settings
from django.db import models
from django.utils import timezone

from courses.models import Course


class Group(models.Model):
    """A named set of learners with leaders, linked to courses: joining the
    group enrolls the member in every linked course."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    leaders = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="led_groups")
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="GroupMembership", blank=True, related_name="member_groups"
    )
    courses = models.ManyToManyField(Course, blank=True, related_name="learner_groups")
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "learner group"

    def __str__(self):
        return self.name


class GroupMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="group_memberships")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    joined = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, blank=True, help_text="How the member joined (code, admin, ...).")

    class Meta:
        ordering = ["group", "-joined"]
        constraints = [models.UniqueConstraint(fields=["user", "group"], name="group_membership_unique_user_group")]
        indexes = [models.Index(fields=["group", "-joined"], name="group_membership_group_joined")]

    def __str__(self):
        return f"{self.user} in {self.group}"
