import factory
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from courses.models import Cohort, Course, CourseRole
from enrollments.models import Allowance, Enrollment

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
