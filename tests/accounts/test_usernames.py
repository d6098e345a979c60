"""Look-alike usernames (issue 13 item 14): a username that mixes alphabets or
looks like an existing one is refused, at sign-up and in Django admin; names in
one alphabet, any alphabet, are welcome. Scripts and look-alikes come from
Unicode's data, as confusable-homoglyphs ships it."""

import importlib
import unicodedata

import pytest
from confusable_homoglyphs.confusables import confusables_data
from django.apps import apps
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.usernames import (
    SKELETON_MAX_LENGTH,
    _prototype_table,
    _skeleton_round,
    username_latin_lookalikes,
    username_mixes_scripts,
    username_scripts,
    username_skeleton,
)

from ..factories import PlatformAdminFactory, UserFactory

User = get_user_model()
recompute_skeletons = importlib.import_module("accounts.migrations.0009_username_skeletons_from_unicode").recompute_skeletons

PASSWORD = "correct-Horse-battery-9"
CYRILLIC_E = "l\u0435arner1"  # lеarner1: the е is Cyrillic
FULLWIDTH = "\uff4cearner1"  # ｌearner1: the ｌ is fullwidth


def _sign_up(client, username, email="newcomer@example.com"):
    return client.post(reverse("account_signup"), {"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD})


# --- the rules, without a database ------------------------------------------------------------


@pytest.mark.parametrize("username", ["learner1", "иван_петров", "Ελένη", "王小明", "たなか太郎", "田中タロウ", "김민수", "john.doe+2@x", "josé-müller"])
def test_one_alphabet_with_digits_and_punctuation_is_not_mixed(username):
    assert not username_mixes_scripts(username)


@pytest.mark.parametrize("username, scripts", [
    (CYRILLIC_E, {"Latin", "Cyrillic"}),
    ("ΑΒcd", {"Latin", "Greek"}),
    ("иван_ivan", {"Latin", "Cyrillic"}),
    ("たなか김", {"Hiragana", "Hangul"}),
])
def test_two_alphabets_are_mixed(username, scripts):
    assert username_mixes_scripts(username) and username_scripts(username) == scripts


def test_japanese_and_korean_may_mix_han_with_their_own_scripts_and_latin():
    assert not username_mixes_scripts("tanaka田中たろう")
    assert not username_mixes_scripts("kim김민수金")


@pytest.mark.parametrize("username", [
    "learner1", "иван_петров", "Ελένη", "王小明", "たなか太郎", "田中タロウ", "김민수", "محمد", "דוד", "tanaka田中たろう",
    "kim김민수金", "wang王小明ㄅ", "paul1",
])
def test_international_names_have_no_letter_passing_for_a_latin_one(username):
    assert not username_mixes_scripts(username) and username_latin_lookalikes(username) == []


def test_a_letter_that_passes_for_a_latin_one_beside_latin_letters_is_found():
    assert username_latin_lookalikes("tanaka〇") == ["〇"]  # IDEOGRAPHIC NUMBER ZERO, Han, looks like O
    assert username_latin_lookalikes("田中〇") == []  # no Latin letter to pass for
    assert username_latin_lookalikes("l\u0435arner1") == ["\u0435"]


@pytest.mark.parametrize("script, username", [("Arabic", "محمد"), ("Hebrew", "דוד"), ("Cherokee", "ᏣᎳᎩ"), ("Old Italic", "𐌀𐌁")])
def test_scripts_are_named_as_unicode_names_them(script, username):
    assert username_scripts(username) == {script}


@pytest.mark.parametrize("lookalike", ["learner1", "LEARNER1", "Iearner1", "learnerl", FULLWIDTH, "ｌｅａｒｎｅｒ１", "l\u0435\u0430rner1"])
def test_lookalikes_share_a_skeleton(lookalike):
    assert username_skeleton(lookalike) == username_skeleton("learner1")


def test_a_whole_word_in_another_alphabet_that_reads_as_latin_shares_a_skeleton():
    assert username_skeleton("\u0440\u0430\u0443") == username_skeleton("pay")  # рау, all Cyrillic
    assert username_skeleton("ΚΑΤΟ") == username_skeleton("kato")  # all Greek capitals


def test_different_names_have_different_skeletons():
    assert username_skeleton("learner2") != username_skeleton("learner1")
    assert username_skeleton("иван") != username_skeleton("ivan")


@pytest.mark.parametrize("lookalike, original", [
    ("ᎠᎪᏙᎬ", "dave"),  # all Cherokee
    ("ꓓꓮꓦꓰ", "dave"),  # all Lisu
    ("ⲣⲟⲣ", "pop"),  # all Coptic
    ("ѡеЬ", "web"),  # all Cyrillic, with letters beyond а е о р с у х
    ("ᴢᴏᴏ", "zoo"),  # Latin small capitals: one script, no mixing to refuse
    ("ꓲearner1", "learner1"),  # a Lisu I
    ("𝐥𝐞𝐚𝐫𝐧𝐞𝐫𝟏", "learner1"),  # mathematical bold
    ("ｌｅａｒｎｅｒ１", "learner1"),  # fullwidth
    ("p\u043epp\u0443", "poppy"),  # Latin with a Cyrillic о and у
    ("\u0440\u043e\u0440\u0440\u0443", "poppy"),  # рорру, all Cyrillic
    ("\u0430dmin", "admin"),  # a Cyrillic а
    ("rnary", "mary"),
    ("ROBERT0", "roberto"),
])
def test_unicode_look_alikes_the_old_table_lacked_share_a_skeleton(lookalike, original):
    assert username_skeleton(lookalike) == username_skeleton(original)


def _listed_pairs():
    """Every pair of look-alikes in the package's data (both directions), as
    the skeleton sees them: a character NFKC or NFD changes never reaches the
    table (``ȧ`` is ``a`` and a combining dot by then)."""
    for char, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            pair = (char.strip("\u200e"), homoglyph["c"].strip("\u200e"))
            if all(unicodedata.normalize(form, c) == c for c in pair for form in ("NFKC", "NFD")):
                yield pair


def test_every_pair_of_look_alikes_unicode_lists_shares_a_skeleton():
    pairs = list(_listed_pairs())
    assert len(pairs) > 5000
    assert [(a, b) for a, b in pairs if username_skeleton(a) != username_skeleton(b)] == []


def test_every_character_settles_within_the_rounds_of_the_skeleton():
    """One more round would change no character's skeleton. Checked for every
    character that normalisation, case-folding or the table changes, or that
    is a prototype; any other is its own skeleton."""
    table = _prototype_table()
    every = (chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    candidates = {chr(cp) for cp in table} | {c for p in table.values() for c in p} | {
        c for c in every if c.casefold() != c or unicodedata.normalize("NFKD", c) != c
    }
    assert len(candidates) > 20000
    unsettled = [c for c in candidates if _skeleton_round(username_skeleton(c)) != username_skeleton(c)]
    assert unsettled == []


def test_a_skeleton_is_cut_to_the_stored_length():
    long_korean = "김" * 150  # the longest username: three letters a syllable in NFD, more mapped
    assert len(username_skeleton(long_korean)) == SKELETON_MAX_LENGTH
    assert username_skeleton("learner1" * 18) == username_skeleton("Iearner1" * 18)


# --- sign-up ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_up_with_a_cyrillic_letter_in_a_latin_name_is_refused(client):
    UserFactory(username="learner1")
    response = _sign_up(client, CYRILLIC_E)
    assert response.status_code == 200
    assert "mixes letters of different alphabets (Cyrillic and Latin)" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


@pytest.mark.django_db
def test_a_mixed_name_is_refused_even_when_nobody_looks_like_it(client):
    response = _sign_up(client, "ivan\u0430")
    assert "mixes letters of different alphabets" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


@pytest.mark.django_db
def test_a_fullwidth_name_is_the_plain_one_and_taken(client):
    UserFactory(username="learner1")
    response = _sign_up(client, FULLWIDTH)
    assert response.status_code == 200
    assert "already" in response.content.decode() and "username" in response.content.decode()
    assert User.objects.filter(username__iexact="learner1").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("lookalike", ["Iearner1", "learnerl", "\u0440\u0430\u0443"])
def test_a_name_that_looks_like_an_existing_one_is_refused(client, lookalike):
    UserFactory(username="learner1")
    UserFactory(username="pay")
    response = _sign_up(client, lookalike)
    assert response.status_code == 200
    assert "looks too much like an existing one" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("lookalike, existing", [
    ("ᎠᎪᏙᎬ", "dave"), ("ᴢᴏᴏ", "zoo"), ("\u0440\u043e\u0440\u0440\u0443", "poppy"), ("ｒｎａｒｙ", "Mary"),
])
def test_a_name_in_one_script_that_unicode_lists_as_looking_like_an_existing_one_is_refused(client, lookalike, existing):
    UserFactory(username=existing)
    response = _sign_up(client, lookalike)
    assert response.status_code == 200
    assert "looks too much like an existing one" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


@pytest.mark.django_db
def test_a_letter_passing_for_a_latin_one_beside_latin_letters_is_refused(client):
    response = _sign_up(client, "tanaka〇")
    assert response.status_code == 200
    assert "look like Latin ones (〇)" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("username", [
    "иван_петров", "Ελένη", "王小明", "たなか太郎", "김민수", "josé", "محمد", "דוד", "ᏣᎳᎩ", "tanaka田中", "김" * 150,
])
def test_names_in_one_alphabet_are_welcome(client, username):
    UserFactory(username="learner1")
    response = _sign_up(client, username)
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="newcomer@example.com")
    assert user.username == username and user.username_skeleton == username_skeleton(username)


@pytest.mark.django_db
def test_a_fullwidth_name_nobody_has_is_stored_plain(client):
    _sign_up(client, "ｊｏｈｎ")
    assert User.objects.get(email="newcomer@example.com").username == "john"


# --- existing accounts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_recomputes_every_stale_skeleton_in_one_update(django_assert_num_queries):
    cherokee = UserFactory(username="ᎠᎪᏙᎬ")
    UserFactory(username="plain")
    lisu = UserFactory(username="ꓓꓮꓦꓰ")
    # As the hand-written table left them: Cherokee and Lisu letters unmapped.
    User.objects.filter(pk=cherokee.pk).update(username_skeleton="ᎠᎪᏙᎬ".casefold())
    User.objects.filter(pk=lisu.pk).update(username_skeleton="ꓓꓮꓦꓰ")

    with django_assert_num_queries(3):  # read the chunk, update the two stale rows, find no next chunk
        assert recompute_skeletons(apps) == 2

    assert dict(User.objects.values_list("username", "username_skeleton")) == {
        "ᎠᎪᏙᎬ": "dave", "plain": "plain", "ꓓꓮꓦꓰ": "dave",
    }
    assert recompute_skeletons(apps) == 0  # again: nothing stale


# --- Django admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, db):
    client.force_login(PlatformAdminFactory(username="root"))
    return client


def _inline_management(page) -> dict:
    """The management forms of the page's inlines (the organisation app adds one)."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{inline.formset.prefix}-{name}": value for name, value in management.initial.items()})
    return data


def _admin_add(client, username, email="added@example.com"):
    url = reverse("admin:accounts_user_add")
    return client.post(url, {
        "username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true",
        **_inline_management(client.get(url)),
    })


def test_admin_refuses_a_lookalike_or_mixed_username_and_a_taken_mailbox(admin_client):
    UserFactory(username="learner1", email="idn@пример.рф")
    for username, message in [(CYRILLIC_E, "mixes letters"), ("Iearner1", "looks too much like"), (FULLWIDTH, "already exists")]:
        response = _admin_add(admin_client, username)
        assert response.status_code == 200 and message in response.content.decode(), username
    response = _admin_add(admin_client, "someone", email="IDN@xn--e1afmkfd.xn--p1ai")
    assert response.status_code == 200 and "Another account has this email address" in response.content.decode()
    assert User.objects.count() == 2  # root and learner1

    response = _admin_add(admin_client, "Ελένη")
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.filter(username="Ελένη", email_key="added@example.com").exists()


def test_admin_change_checks_a_changed_username_only(admin_client):
    UserFactory(username="learner1")
    other = UserFactory(username="other", email="other@example.com")
    url = reverse("admin:accounts_user_change", args=[other.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and not isinstance(value, list | tuple)}
    data.update({"username": "Iearner1", "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00", **_inline_management(page)})
    data.pop("password", None)
    data.pop("last_login", None)
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "looks too much like" in response.content.decode()
    other.refresh_from_db()
    assert other.username == "other"

    # An account that had a look-alike name before the rule stays editable.
    User.objects.filter(pk=other.pk).update(username="Iearner1")
    data.update({"username": "Iearner1", "first_name": "Renamed"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(pk=other.pk).first_name == "Renamed"
