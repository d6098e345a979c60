import factory
from django.conf import settings

from codes.models import CodeBatch, EnrollmentCode, Redemption, end_of_day
from codes.services import format_code, normalize_code, random_part
from organisations.models import Group, GroupMembership

from ..factories import UserFactory


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Group {n}")

    @factory.post_generation
    def leaders(self, create, extracted, **kwargs):
        if create and extracted:
            self.leaders.set(extracted)

    @factory.post_generation
    def courses(self, create, extracted, **kwargs):
        if create and extracted:
            self.courses.set(extracted)


class GroupMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GroupMembership

    group = factory.SubFactory(GroupFactory)
    user = factory.SubFactory(UserFactory)


class CodeBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CodeBatch
        skip_postgeneration_save = True

    created_by = factory.SubFactory(UserFactory)
    count = 1
    prefix = ""
    max_uses = 1
    time_zone = factory.LazyFunction(lambda: settings.TIME_ZONE)

    @factory.post_generation
    def courses(self, create, extracted, **kwargs):
        if create and extracted:
            self.courses.set(extracted, through_defaults={"created": self.created})

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(extracted, through_defaults={"created": self.created})


class EnrollmentCodeFactory(factory.django.DjangoModelFactory):
    """A code. Pass ``courses=[...]`` / ``groups=[...]`` for what its (new) batch unlocks."""

    class Meta:
        model = EnrollmentCode
        exclude = ("courses", "groups", "prefix", "may_exceed_cap", "time_zone")

    courses = ()
    groups = ()
    batch = factory.LazyAttribute(
        lambda o: CodeBatchFactory(courses=o.courses, groups=o.groups, prefix=o.prefix, max_uses=o.max_uses, expires_on=o.expires_on,
            may_exceed_cap=o.may_exceed_cap, time_zone=o.time_zone or settings.TIME_ZONE,
        )
    )
    prefix = ""
    may_exceed_cap = False
    time_zone = ""  # the new batch's; blank: the site's
    code = factory.LazyAttribute(lambda o: format_code(o.prefix, random_part()))
    normalized = factory.LazyAttribute(lambda o: normalize_code(o.code))
    max_uses = 1
    uses = 0
    expires_on = None
    # As code_batch_generate sets it: the end of the expiry day in the batch's zone.
    expires_at = factory.LazyAttribute(lambda o: end_of_day(o.expires_on, o.batch.time_zone) if o.expires_on else None)


class RedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Redemption

    code = factory.SubFactory(EnrollmentCodeFactory)
    user = factory.SubFactory(UserFactory)
