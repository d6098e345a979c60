"""The codes pages, messages, errors and CSV export in the language of the
request (Accept-Language), English without one."""

import csv
import datetime
import html
import io
import zoneinfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import translation

from codes.services import CodeExpired, code_batch_generate, code_redeem

from ..factories import UserFactory
from .factories import EnrollmentCodeFactory

pytestmark = pytest.mark.django_db

FR = {"accept-language": "fr"}


def codes_url(course):
    return reverse("instructor_codes", kwargs={"course_key": course.key})


@pytest.mark.parametrize(("count", "message"), [(1, "1 code généré."), (5, "5 codes générés.")])
def test_generating_in_french_says_how_many_with_the_right_plural(client_for, course, course_staff, count, message):
    page = client_for(course_staff).post(
        codes_url(course), {"courses": [course.pk], "count": count, "uses_mode": "single"}, headers=FR, follow=True,
    ).content.decode()
    assert message in page
    assert "Générer des codes d'inscription" in page and "Codes générés" in page
    assert f">{count} code{'s' if count > 1 else ''}" in page  # the table's count
    assert "Generate enrollment codes" not in page


def test_the_french_form_errors_and_labels(client_for, course, course_staff):
    response = client_for(course_staff).post(codes_url(course), {"count": 1, "uses_mode": "single"}, headers=FR)
    page = html.unescape(response.content.decode())
    assert response.status_code == 400
    assert "Choisissez au moins un cours ou un groupe auquel les codes donnent accès." in page
    assert "Fuseau horaire d'expiration" in page and "Nombre de codes" in page


def test_the_export_header_and_words_are_in_the_language_of_the_request(client_for, course, course_staff):
    code_batch_generate(actor=course_staff, courses=[course], count=1, max_uses=None)
    url = reverse("course_codes_export", kwargs={"course_key": course.key})
    response = client_for(course_staff).get(url, headers=FR)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "code", "cours", "groupes", "utilisations", "utilisations max.", "expire", "statut", "lot", "créé le", "au-delà de la limite",
        "fuseau horaire d'expiration",
    ]
    assert rows[1][4] == "illimité" and rows[1][6] == "Actif" and rows[1][9] == "non"
    # the file name stays as it always was
    assert "_codes_" in response["Content-Disposition"]
    english = list(csv.reader(io.StringIO(b"".join(client_for(course_staff).get(url).streaming_content).decode())))
    assert english[0][1] == "courses" and english[1][6] == "Active"


def test_an_expired_code_says_so_in_french_with_its_zone(course, learner):
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31), time_zone="Asia/Tokyo")
    tokyo_midnight = datetime.datetime(2027, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    with time_machine.travel(tokyo_midnight, tick=False), translation.override("fr"), pytest.raises(CodeExpired) as caught:
        code_redeem(code=code.code, user=learner)
    assert str(caught.value) == "Ce code a expiré à la fin du 31 Déc 2026 (Asia/Tokyo)."


def test_redeem_page_in_french_and_in_arabic(client_for, learner):
    client = client_for(learner)
    french = html.unescape(client.get(reverse("redeem_code"), headers=FR).content.decode())
    assert "Utiliser un code d'inscription" in french and "Code d'inscription" in french
    arabic = client.get(reverse("redeem_code"), headers={"accept-language": "ar"}).content.decode()
    assert "استخدام رمز تسجيل" in arabic and "لا تهم المسافات والشرطات والأحرف الكبيرة أو الصغيرة." in arabic
    english = client.post(reverse("redeem_code"), {"code": "ZZZZ-ZZZZ-ZZZZ"}).content.decode()
    assert "There is no such code." in english


@pytest.mark.parametrize(("uses", "words"), [(1, "1 sur 1 utilisation"), (5, "5 sur 5 utilisations")])
def test_redemptions_page_in_french(client_for, course, course_staff, uses, words):
    code = EnrollmentCodeFactory(courses=[course], max_uses=uses, uses=uses)
    url = reverse("course_codes_redemptions", kwargs={"course_key": course.key, "code_id": code.pk})
    page = html.unescape(client_for(course_staff).get(url, headers=FR).content.decode())
    assert words in page and "Utilisé" in page and "Personne n'a encore utilisé ce code." in page


def test_a_learner_without_a_language_gets_english(client_for):
    page = client_for(UserFactory()).get(reverse("redeem_code")).content.decode()
    assert "Redeem an enrollment code" in page
