"""The organisation pages in the language the browser asks for (Accept-Language):
French and Arabic, with plurals worked out per count. English stays the default
(the rest of the suite asserts it)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from organisations import import_file
from organisations.import_file import read_rows
from organisations.models import OrgImport, UnitKind
from organisations.selectors import Target
from organisations.services import assignment_link, imports
from organisations.texts import job_summary_text

from ..factories import UserFactory
from .factories import OrgUnitFactory
from .test_imports import XLSX, xlsx

pytestmark = pytest.mark.django_db

FR = {"accept-language": "fr"}
AR = {"accept-language": "ar"}


@pytest.fixture(scope="module", autouse=True)
def catalogs():
    """The import's translated headings read afresh (tests/conftest.py compiles the catalogs)."""
    import_file._translated_headings.cache_clear()


def test_units_page_in_french(client_for, platform_admin):
    OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Ventes")
    page = client_for(platform_admin).get(reverse("org_unit_list") + "?kind=department", headers=FR).content.decode()
    assert "<h2 class=\"h5 mb-0\">Départements</h2>" in page and "Nouveau département" in page
    assert '>Entreprises</a>' in page and ">Règles</a>" in page and ">Membres</th>" in page
    english = client_for(platform_admin).get(reverse("org_unit_list") + "?kind=department").content.decode()
    assert "New department" in english and "Nouveau département" not in english


@pytest.mark.parametrize("people, said", [
    (1, '<span class="count-added">1</span> sera ajouté'),
    (5, '<span class="count-added">5</span> seront ajoutés'),
])
def test_members_preview_in_french_says_one_and_five(client_for, platform_admin, course, people, said):
    sales = OrgUnitFactory(kind=UnitKind.DEPARTMENT, name="Ventes")
    assignment_link(target=Target(unit=sales), course=course, actor=platform_admin)
    names = [UserFactory(username=f"p{i}").username for i in range(people)]
    url = reverse("org_unit_members", args=["department", sales.pk])
    page = client_for(platform_admin).post(url, {"action": "add", "identifiers": " ".join(names)}, headers=FR).content.decode()
    assert "Aperçu de l'ajout de membres : rien n'a encore changé" in page
    assert said in page
    assert "Les personnes ajoutées sont inscrites au 1 cours de cette unité (département)" in page


@pytest.mark.parametrize("people, said", [(1, "Terminé : 1 inscription effectuée."), (5, "Terminé : 5 inscriptions effectuées.")])
def test_rule_preview_and_result_in_french(client_for, platform_admin, course, people, said):
    dept = OrgUnitFactory()
    UserFactory.create_batch(people, department=dept)
    client = client_for(platform_admin)
    data = {"name": "Accueil", "courses": [course.pk], "department": dept.pk, "retroactive": "on", "is_active": "on"}
    page = client.post(reverse("org_rule_create"), {**data, "action": "preview"}, headers=FR).content.decode()
    assert "Nouvelle règle d'inscription" in page and "Seraient inscrits" in page and f'class="count-enroll">{people}<' in page
    assert "Rien n'a encore été enregistré." in page and "Confirmer et enregistrer" in page
    page = client.post(reverse("org_rule_create"), {**data, "action": "confirm"}, headers=FR, follow=True).content.decode()
    assert said in page


@pytest.mark.parametrize("max_rows, said", [(1, "Jusqu'à 1 ligne et"), (5, "Jusqu'à 5 lignes et")])
def test_import_page_in_french(client_for, platform_admin, monkeypatch, max_rows, said):
    monkeypatch.setattr(import_file, "MAX_ROWS", max_rows)
    page = client_for(platform_admin).get(reverse("org_import"), headers=FR).content.decode()
    assert "Importer depuis un tableur" in page and "Générer le modèle d'import" in page and "Vérifier le fichier" in page
    assert said in page


def test_import_template_check_and_results_in_french(client_for, platform_admin, course, django_capture_on_commit_callbacks):
    """The template has French headings and reads back; the check (a job) says why
    a row is refused in the language of whoever uploaded the file."""
    client = client_for(platform_admin)
    template = client.get(reverse("org_import_template"), {"courses": [course.pk]}, headers=FR)
    header = read_rows(name="t.xlsx", data=template.content)[0]
    assert header[:3] == ["e-mail", "prénom", "nom"]
    assert not imports.check_rows(rows=[header, ["someone@example.com", "Ana", "Lee", "", "", "", "", "fr", "x"]]).errors
    data = xlsx([header, ["a@example.com", "", "", "", "", "", "", "", "x"], ["pas-un-email", "", "", "", "", "", "", "", "x"]])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("org_import"), {"file": SimpleUploadedFile("p.xlsx", data, XLSX)}, headers=FR)
    page = client.get(response["Location"], headers=FR).content.decode()
    assert "Vérification de p.xlsx" in page and "Lignes prêtes :" in page and "Lancer l'import</button>" in page
    assert "adresse e-mail invalide &#x27;pas-un-email&#x27;" in page
    assert OrgImport.objects.get().errors[0]["column"] == "email"  # the column is named as the file names it


def test_job_summary_in_french_and_arabic():
    with translation.override("fr"):
        assert job_summary_text({"enrolled": 1, "allowances": 2}) == "1 inscription effectuée, 2 invitations créées."
    with translation.override("ar"):
        assert job_summary_text({"enrolled": 3}) == "التسجيلات المنجزة: 3."


def test_unit_members_page_in_arabic(client_for, platform_admin):
    team = OrgUnitFactory(kind=UnitKind.TEAM, name="Alpha")
    page = client_for(platform_admin).get(reverse("org_unit_members", args=["team", team.pk]), headers=AR).content.decode()
    assert "الفريق: Alpha" in page and "إضافة أعضاء" in page and "لا يوجد أعضاء." in page and "إزالة المحددين" in page
