"""The batch's decide step without a database: its rules by example, and
properties over any list of identifiers and any starting states.

No test here is marked ``django_db``: pytest-django refuses every query, so
these pass only while ``batch_decide`` and ``batch_settle`` stay pure. The
write step is played by ``apply`` below, which does to plain dicts what
``batch._write`` does to the tables, and ``upserts_report`` says what its
upserts would report."""

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from enrollment_site.lib.identifiers import Kind, parse_identifiers
from enrollments.models import Notification, Outcome, State
from enrollments.services.batch_decide import ENROLL, UNENROLL, BatchRequest, batch_decide, batch_settle

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
properties = hypothesis_settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Account:
    pk: int
    username: str
    email: str

    @property
    def display_name(self) -> str:
        return self.username.title()


@dataclass(frozen=True)
class EnrollmentRow:
    pk: int
    is_active: bool
    mode: str = "audit"


@dataclass(frozen=True)
class AllowanceRow:
    auto_enroll: bool


@dataclass
class World:
    """The course as the tables hold it: active accounts, enrollments by user id, allowances by email key."""

    accounts: list[Account]
    enrollments: dict[int, EnrollmentRow] = field(default_factory=dict)
    allowances: dict[str, AllowanceRow] = field(default_factory=dict)

    def resolve(self, identifiers):
        """What the resolve step finds: emails and usernames in any case (usernames here differ in more than case)."""
        by_email = {a.email.lower(): a for a in self.accounts}
        by_username = {a.username.lower(): a for a in self.accounts}
        found = {Kind.EMAIL: by_email, Kind.USERNAME: by_username}
        return [(ident, found.get(ident.kind, {}).get(ident.key)) for ident in identifiers]

    def snapshot(self):
        return dict(self.enrollments), dict(self.allowances)


def request(action, *, auto_enroll=True, email_students=True) -> BatchRequest:
    return BatchRequest(
        action=action, auto_enroll=auto_enroll, email_students=email_students, course_id=7, default_mode="audit",
        source="batch", reason="", operation_id=uuid.UUID(int=1), actor_id=None, now=NOW,
    )


def decide(world: World, identifiers, action, *, seen_before=None, **options):
    return batch_decide(
        request=request(action, **options), resolved=world.resolve(identifiers),
        enrollments=world.enrollments, allowances=world.allowances, seen_before=seen_before,
    )


def apply(world: World, changes) -> None:
    """The write step, on the world: upserts reactivate (keeping the mode), deactivations keep the row."""
    user_of = {row.pk: user_id for user_id, row in world.enrollments.items()}
    next_pk = max(user_of, default=0) + 1
    for row in changes.enrollments_to_upsert:
        existing = world.enrollments.get(row["user_id"])
        if existing is not None:
            world.enrollments[row["user_id"]] = replace(existing, is_active=True)
        else:
            world.enrollments[row["user_id"]] = EnrollmentRow(next_pk, True, row["mode"])
            next_pk += 1
    for pk in changes.enrollments_to_deactivate:
        world.enrollments[user_of[pk]] = replace(world.enrollments[user_of[pk]], is_active=False)
    for row in changes.allowances_to_upsert:
        world.allowances[row["email_key"]] = AllowanceRow(row["auto_enroll"])
    for key in changes.allowance_keys_to_delete:
        del world.allowances[key]


def upserts_report(world: World, changes) -> tuple[dict[int, bool], dict[str, bool]]:
    """What the batch's upserts report against ``world`` (``bulk_upsert_changed``):
    inserted (True) or changed (False) by key; a row already as proposed is left out."""
    enrolled: dict[int, bool] = {}
    for row in changes.enrollments_to_upsert:
        existing = world.enrollments.get(row["user_id"])
        if existing is None or not existing.is_active:
            enrolled[row["user_id"]] = existing is None
    allowed: dict[str, bool] = {}
    for row in changes.allowances_to_upsert:
        existing = world.allowances.get(row["email_key"])
        if existing is None or existing.auto_enroll != row["auto_enroll"]:
            allowed[row["email_key"]] = existing is None
    return enrolled, allowed


def write_and_settle(world: World, changes) -> None:
    enrolled, allowed = upserts_report(world, changes)
    apply(world, changes)
    batch_settle(changes, enrollments=enrolled, allowances=allowed)


def told(changes):
    """Everything a batch says and records: per identifier its outcome and states, the audit entries, the messages."""
    return (
        [(r.identifier, r.outcome, r.before, r.after) for r in changes.results],
        [(a["identifier"], a["state_before"], a["state_after"]) for a in changes.audits],
        list(changes.messages),
    )


# --- strategies: a few accounts, any starting states, identifiers naming them in any way ---------

ACCOUNTS = [Account(pk, f"user{pk}", f"user{pk}@example.com") for pk in range(1, 6)]
NEW_EMAILS = [f"new{i}@example.com" for i in range(4)]
any_case = st.sampled_from([str, str.upper, str.title])


@st.composite
def worlds(draw) -> World:
    accounts = draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, max_size=len(ACCOUNTS)))
    world = World(accounts=accounts)
    for account in accounts:
        if draw(st.booleans()):
            world.enrollments[account.pk] = EnrollmentRow(100 + account.pk, draw(st.booleans()), draw(st.sampled_from(["audit", "verified"])))
    # Allowances for new addresses and for accounts' addresses (made before the account was).
    for email in draw(st.lists(st.sampled_from(NEW_EMAILS + [a.email for a in ACCOUNTS]), unique=True)):
        world.allowances[email] = AllowanceRow(draw(st.booleans()))
    return world


tokens = st.lists(
    st.one_of(
        st.builds(lambda case, text: case(text), any_case, st.sampled_from([a.username for a in ACCOUNTS])),
        st.builds(lambda case, text: case(text), any_case, st.sampled_from([a.email for a in ACCOUNTS])),
        st.builds(lambda case, text: case(text), any_case, st.sampled_from(NEW_EMAILS)),
        st.sampled_from(["ghost", "nobody", "bad@", "x@@example.com"]),
    ),
    max_size=14,
)


# --- properties --------------------------------------------------------------------------------------


@properties
@given(world=worlds(), raw=tokens, action=st.sampled_from([ENROLL, UNENROLL]), auto_enroll=st.booleans())
def test_every_identifier_gets_exactly_one_outcome_in_the_order_given(world, raw, action, auto_enroll):
    identifiers = parse_identifiers(raw)
    changes = decide(world, identifiers, action, auto_enroll=auto_enroll)
    assert [r.identifier for r in changes.results] == [i.text for i in identifiers]
    assert all(r.outcome in Outcome.ORDER for r in changes.results)


@properties
@given(world=worlds(), raw=tokens, action=st.sampled_from([ENROLL, UNENROLL]))
def test_a_person_named_several_times_counts_once(world, raw, action):
    identifiers = parse_identifiers(raw)
    changes = decide(world, identifiers, action)
    people: dict[int, list[str]] = {}
    for (_, user), result in zip(world.resolve(identifiers), changes.results, strict=True):
        if user is not None:
            people.setdefault(user.pk, []).append(result.outcome)
    for outcomes in people.values():
        assert outcomes[0] != Outcome.DUPLICATE and outcomes[1:] == [Outcome.DUPLICATE] * (len(outcomes) - 1)
    # one audit entry, one email and at most one row change per person or address
    recipients = [m.email.lower() for m in changes.messages]
    assert len(recipients) == len(set(recipients))
    audited = [(a["user_id"], a["user_id"] or a["identifier"].lower()) for a in changes.audits]
    assert len(audited) == len(set(audited))
    assert len(changes.enrollments_to_upsert) == len({r["user_id"] for r in changes.enrollments_to_upsert})
    assert len(changes.allowance_keys_to_delete) == len(set(changes.allowance_keys_to_delete))


@properties
@given(world=worlds(), raw=tokens, auto_enroll=st.booleans())
def test_enrolling_twice_equals_enrolling_once(world, raw, auto_enroll):
    identifiers = parse_identifiers(raw)
    apply(world, decide(world, identifiers, ENROLL, auto_enroll=auto_enroll))
    once = world.snapshot()
    again = decide(world, identifiers, ENROLL, auto_enroll=auto_enroll)
    assert not again.writes_anything
    assert not {Outcome.ENROLLED, Outcome.REACTIVATED} & {r.outcome for r in again.results}
    apply(world, again)
    assert world.snapshot() == once


@properties
@given(world=worlds(), raw=tokens, auto_enroll=st.booleans())
def test_enroll_then_unenroll_leaves_only_inactive_enrollments_and_no_allowances(world, raw, auto_enroll):
    identifiers = parse_identifiers(raw)
    apply(world, decide(world, identifiers, ENROLL, auto_enroll=auto_enroll))
    apply(world, decide(world, identifiers, UNENROLL))
    named = [(ident, user) for ident, user in world.resolve(identifiers) if ident.kind != Kind.INVALID]
    for ident, user in named:
        if user is not None:
            assert not world.enrollments[user.pk].is_active
            assert user.email.lower() not in world.allowances
        elif ident.kind == Kind.EMAIL:
            assert ident.key not in world.allowances
    assert not decide(world, identifiers, UNENROLL).writes_anything  # and unenrolling again changes nothing


@properties
@given(world=worlds(), raw=tokens, action=st.sampled_from([ENROLL, UNENROLL]), split=st.integers(min_value=0, max_value=14))
def test_a_batch_in_two_chunks_does_what_it_does_in_one(world, raw, action, split):
    identifiers = parse_identifiers(raw)
    whole = World(world.accounts, dict(world.enrollments), dict(world.allowances))
    one = decide(whole, identifiers, action)
    apply(whole, one)
    first = decide(world, identifiers[:split], action)
    apply(world, first)
    second = decide(world, identifiers[split:], action, seen_before=first.seen)
    apply(world, second)
    assert world.snapshot() == whole.snapshot()
    assert [(r.outcome, r.after) for r in first.results + second.results] == [(r.outcome, r.after) for r in one.results]


@properties
@given(world=worlds(), raw=tokens, action=st.sampled_from([ENROLL, UNENROLL]))
def test_deciding_changes_nothing_it_was_given(world, raw, action):
    before = world.snapshot()
    seen = {1: "user1"}
    decide(world, parse_identifiers(raw), action, seen_before=seen)
    assert world.snapshot() == before and seen == {1: "user1"}


@properties
@given(world=worlds(), raw_a=tokens, raw_b=tokens, auto_a=st.booleans(), auto_b=st.booleans())
def test_a_batch_that_raced_another_says_what_it_would_have_said_after_it(world, raw_a, raw_b, auto_a, auto_b):
    """Two enroll batches read the course at once; A writes first. B saw the
    rows that existed then as A left them (it waited on their locks) and none
    of those A created. Settled by its write, B says, audits and mails exactly
    what it would have had it started after A committed."""
    a_ids, b_ids = parse_identifiers(raw_a), parse_identifiers(raw_b)
    existed = set(world.enrollments), set(world.allowances)
    a = decide(world, a_ids, ENROLL, auto_enroll=auto_a)
    b_view = World(world.accounts)  # B's read: locked rows wait for A, new rows are not there yet
    write_and_settle(world, a)
    b_view.enrollments = {k: v for k, v in world.enrollments.items() if k in existed[0]}
    b_view.allowances = {k: v for k, v in world.allowances.items() if k in existed[1]}
    raced = decide(b_view, b_ids, ENROLL, auto_enroll=auto_b)
    after_a = decide(world, b_ids, ENROLL, auto_enroll=auto_b)
    write_and_settle(world, raced)
    assert told(raced) == told(after_a)


# --- rules by example ------------------------------------------------------------------------------


def test_reactivation_keeps_the_mode_and_the_state_before_is_audited():
    kim = Account(1, "kim", "kim@example.com")
    world = World([kim], enrollments={1: EnrollmentRow(10, False, "verified")})
    changes = decide(world, parse_identifiers("kim"), ENROLL)
    assert [r.outcome for r in changes.results] == [Outcome.REACTIVATED]
    assert changes.enrollments_to_upsert[0]["mode"] == "verified"
    assert [(a["state_before"], a["state_after"]) for a in changes.audits] == [(State.UNENROLLED, State.ENROLLED)]
    assert [(m.kind, m.email, m.name) for m in changes.messages] == [(Notification.Kind.ENROLLED, "kim@example.com", "Kim")]


def test_an_invitation_changes_only_when_its_auto_enroll_differs():
    world = World([], allowances={"a@example.com": AllowanceRow(True), "b@example.com": AllowanceRow(False)})
    changes = decide(world, parse_identifiers("A@example.com b@example.com"), ENROLL, auto_enroll=True)
    assert [r.outcome for r in changes.results] == [Outcome.ALREADY_ALLOWED, Outcome.ALLOWED_AUTO]
    assert [r["email_key"] for r in changes.allowances_to_upsert] == ["b@example.com"]
    assert [(m.kind, m.auto_enroll) for m in changes.messages] == [(Notification.Kind.ALLOWED, True)]


def test_unenroll_removes_the_allowance_of_an_account_named_by_username_and_keeps_the_row():
    kim = Account(1, "kim", "Kim@Example.com")
    world = World([kim], enrollments={1: EnrollmentRow(10, True)}, allowances={"kim@example.com": AllowanceRow(True)})
    changes = decide(world, parse_identifiers("kim ghost bad@ nobody@example.com"), UNENROLL)
    assert [r.outcome for r in changes.results] == [Outcome.UNENROLLED, Outcome.NO_SUCH_USER, Outcome.INVALID_EMAIL, Outcome.NOT_ENROLLED]
    assert (changes.enrollments_to_deactivate, changes.allowance_keys_to_delete) == ([10], ["kim@example.com"])
    assert [m.kind for m in changes.messages] == [Notification.Kind.UNENROLLED]


def test_without_email_students_nothing_goes_to_the_outbox():
    changes = decide(World([]), parse_identifiers("new@example.com"), ENROLL, email_students=False)
    assert changes.allowances_to_upsert and not changes.messages


def test_someone_named_in_an_earlier_chunk_is_named_twice_with_the_state_they_are_in():
    kim = Account(1, "kim", "kim@example.com")
    world = World([kim], enrollments={1: EnrollmentRow(10, True)})
    changes = decide(world, parse_identifiers("kim@example.com"), UNENROLL, seen_before={1: "kim"})
    (result,) = changes.results
    assert (result.outcome, result.note, result.after.enrollment) == (Outcome.DUPLICATE, "same person as kim", True)
    assert not changes.writes_anything


def test_the_second_of_two_simultaneous_batches_is_told_already_and_records_nothing():
    kim = Account(1, "kim", "kim@example.com")
    world = World([kim])
    first = decide(world, parse_identifiers("kim new@example.com"), ENROLL)
    second = decide(world, parse_identifiers("kim new@example.com"), ENROLL)  # read before the first wrote
    write_and_settle(world, first)
    write_and_settle(world, second)
    assert [r.outcome for r in first.results] == [Outcome.ENROLLED, Outcome.ALLOWED_AUTO]
    assert len(first.audits) == len(first.messages) == 2
    assert [r.outcome for r in second.results] == [Outcome.ALREADY_ENROLLED, Outcome.ALREADY_ALLOWED]
    assert [(r.before.enrollment, r.before.allowed) for r in second.results] == [(True, False), (False, True)]
    assert second.audits == [] and second.messages == []


def test_a_row_written_meanwhile_in_another_state_is_the_state_before():
    """Another transaction invited the address without auto-enroll, and made
    (and ended) an enrollment, between this batch's read and its write."""
    kim = Account(1, "kim", "kim@example.com")
    changes = decide(World([kim]), parse_identifiers("kim new@example.com"), ENROLL, auto_enroll=True)
    batch_settle(changes, enrollments={1: False}, allowances={"new@example.com": False})
    assert [r.outcome for r in changes.results] == [Outcome.REACTIVATED, Outcome.ALLOWED_AUTO]
    assert [(a["state_before"], a["state_after"]) for a in changes.audits] == [
        (State.UNENROLLED, State.ENROLLED), (State.ALLOWED, State.ALLOWED_AUTO),
    ]
    assert changes.results[1].before.as_dict() == {"enrollment": False, "allowed": True, "user": False, "auto_enroll": False}
    assert len(changes.messages) == 2


def test_where_the_database_cannot_tell_inserted_from_updated_the_decision_stands():
    changes = decide(World([ACCOUNTS[0]]), parse_identifiers("user1 new@example.com"), ENROLL)
    decided = told(changes)
    batch_settle(changes, enrollments={1: None}, allowances={"new@example.com": None})
    assert told(changes) == decided
