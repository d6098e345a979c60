import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from courses.models import Cohort, Course, CourseRole
from enrollments.models import Allowance, Enrollment
from organisations.models import Placement

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"Person{n}")
    password = factory.django.Password("pass-word-123")

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        # An activated account: allauth's verified primary address.
        if create and extracted is not False:
            EmailAddress.objects.create(user=self, email=self.email.lower(), verified=True, primary=True)

    # UserFactory(company=..., department=...): where the person sits is their
    # organisations Placement, created once the user exists.
    @factory.post_generation
    def company(self, create, extracted, **kwargs):
        if create and extracted is not None:
            _place(self, company=extracted)

    @factory.post_generation
    def department(self, create, extracted, **kwargs):
        if create and extracted is not None:
            _place(self, department=extracted)


def _place(user, **units):
    placement, _ = Placement.objects.update_or_create(user=user, defaults=units)
    user.placement = placement  # the factory's instance reads both units, whichever came first


class PlatformAdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    key = factory.Sequence(lambda n: f"course-v1:TestOrg+C{n}+2026")
    display_name = factory.Sequence(lambda n: f"Test course {n}")
    modes = "audit,verified"


class CourseRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CourseRole

    course = factory.SubFactory(CourseFactory)
    user = factory.SubFactory(UserFactory)
    role = CourseRole.Role.STAFF


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort

    course = factory.SubFactory(CourseFactory)
    name = factory.Sequence(lambda n: f"Cohort {n}")


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)
    mode = "audit"
    is_active = True


class AllowanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Allowance

    course = factory.SubFactory(CourseFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    auto_enroll = True
