"""organisations 0005 / accounts 0004: a person's company and department
move from the user to their Placement and back, every value kept."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0003_user_organisation"), ("organisations", "0004_orgimport_results_file")]
AFTER = [("accounts", "0004_remove_user_company_department"), ("organisations", "0005_placement")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.one_database
@pytest.mark.django_db(transaction=True)
def test_company_and_department_survive_the_move_and_its_reversal():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = migrate(BEFORE)
        OrgUnit, User = old.get_model("organisations", "OrgUnit"), old.get_model("accounts", "User")
        acme = OrgUnit.objects.create(kind="company", name="Acme")
        sales = OrgUnit.objects.create(kind="department", name="Sales")
        placed = {
            "both": (acme.pk, sales.pk), "company only": (acme.pk, None), "department only": (None, sales.pk), "nowhere": (None, None),
        }
        for name, (company, department) in placed.items():
            User.objects.create(username=name, email=f"{name.replace(' ', '.')}@example.com", company_id=company, department_id=department)

        new = migrate(AFTER)
        Placement = new.get_model("organisations", "Placement")
        moved = {p.user.username: (p.company_id, p.department_id) for p in Placement.objects.select_related("user")}
        assert moved == {name: units for name, units in placed.items() if units != (None, None)}
        assert "company" not in {f.name for f in new.get_model("accounts", "User")._meta.get_fields()}

        back = migrate(BEFORE)
        User = back.get_model("accounts", "User")
        assert {u.username: (u.company_id, u.department_id) for u in User.objects.all()} == placed
    finally:
        migrate(leaves)
