import factory

from organisations.models import OrgUnit, UnitKind


class OrgUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrgUnit

    kind = UnitKind.DEPARTMENT
    name = factory.Sequence(lambda n: f"Unit {n}")
