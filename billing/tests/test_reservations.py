"""Reservations are rows (billing/sql/0007, usage/sql/0008): what check_and_consume_quota reserved
is the server's record; a usage record names it and is charged the actual amount minus what it
held, once; an unsettled one gives its hold back when it expires, by the worker or lazily.

Calls run as the runtime role in a real identity context whose credential may record
(``rls.user_context(..., may_record=True)``), as an API request of the user's would.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from billing import errors, services, tasks
from billing.models import QuotaReservation, UserQuota
from usage import services as usage_services
from usage.models import AIModel, AIUsageRequest
from witchcraft.platform import rls
from witchcraft.testing.factories import UserFactory, catalog_model, quota_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(user):
    quota_for(user, "free")  # 100 000 tokens, $1.00
    return user


@pytest.fixture
def model(db) -> AIModel:
    return catalog_model("gpt-5-mini")  # $0.25 in, $2.00 out per 1M


def reserve(user, tokens: int = 10_000, cost: str = "0.10") -> services.QuotaDecision:
    with transaction.atomic(), rls.user_context(user, may_record=True):
        decision = services.quota_consume(user_id=user.id, tokens=tokens, cost=Decimal(cost))
    assert decision.allowed
    return decision


def record(user, model, *, as_user=None, **fields) -> int:
    fields.setdefault("input_tokens", 1_000)
    fields.setdefault("output_tokens", 500)  # $0.00125 at gpt-5-mini's prices
    with transaction.atomic(), rls.user_context(as_user or user, may_record=True):
        return usage_services.usage_record(
            user_id=user.id, provider_id=model.provider_id, model_id=model.id, **fields
        )


def used(user) -> tuple[int, Decimal]:
    quota = UserQuota.objects.get(user=user)
    return quota.tokens_used, quota.cost_used


def expire(reservation_id: int) -> None:
    """Move a reservation's life into the past (as the migration role, outside any context)."""
    past = timezone.now() - timedelta(minutes=30)
    QuotaReservation.objects.filter(pk=reservation_id).update(
        created_at=past - timedelta(minutes=15), expires_at=past
    )


def refused(user, model, **fields) -> usage_services.UsageError:
    with pytest.raises(usage_services.UsageError) as caught:
        record(user, model, **fields)
    return caught.value


# Settlement --------------------------------------------------------------------------------------


def test_a_record_settles_its_reservation_once_with_the_actual_amount(member, model):
    reservation = reserve(member)
    assert used(member) == (10_000, Decimal("0.10"))
    usage_id = record(member, model, request_id="r1", reservation_id=reservation.reservation_id)
    assert used(member) == (1_500, Decimal("0.001250"))
    row = QuotaReservation.objects.get(pk=reservation.reservation_id)
    assert (row.usage_id, row.request_id, row.released_at) == (usage_id, "r1", None)
    assert row.settled_at is not None
    assert AIUsageRequest.objects.get(pk=usage_id).reservation_id == reservation.reservation_id


def test_a_retry_of_the_settling_record_is_its_duplicate(member, model):
    reservation = reserve(member)
    first = record(member, model, request_id="r1", reservation_id=reservation.reservation_id)
    again = record(member, model, request_id="r1", reservation_id=reservation.reservation_id)
    assert first == again
    assert used(member) == (1_500, Decimal("0.001250"))
    assert AIUsageRequest.objects.filter(user=member).count() == 1


def test_a_made_up_reservation_is_not_found_and_changes_nothing(member, model):
    reserve(member)
    before = used(member)
    error = refused(member, model, request_id="forged", reservation_id=10**12)
    assert (error.code, error.message) == ("not_found", f"reservation {10**12} not found")
    assert used(member) == before
    assert not AIUsageRequest.objects.filter(user=member).exists()


def test_another_users_reservation_is_not_found_and_stays_theirs(member, model):
    other = UserFactory()
    quota_for(other, "free")
    theirs = reserve(other, 50_000, "0.50")
    error = refused(member, model, request_id="foreign", reservation_id=theirs.reservation_id)
    assert error.code == "not_found"
    assert used(other) == (50_000, Decimal("0.50"))
    assert used(member) == (0, Decimal(0))
    assert QuotaReservation.objects.get(pk=theirs.reservation_id).settled_at is None


def test_a_settled_reservation_cannot_be_used_again(member, model):
    reservation = reserve(member)
    record(member, model, request_id="r1", reservation_id=reservation.reservation_id)
    before = used(member)
    error = refused(member, model, request_id="r2", reservation_id=reservation.reservation_id)
    assert error.code == "conflict"
    assert error.message == (
        f"reservation {reservation.reservation_id} was already settled by request_id 'r1'"
    )
    assert used(member) == before
    assert AIUsageRequest.objects.filter(user=member).count() == 1


def test_an_expired_reservation_is_refused_and_its_hold_comes_back(member, model):
    reservation = reserve(member)
    expire(reservation.reservation_id)
    error = refused(member, model, request_id="late", reservation_id=reservation.reservation_id)
    assert error.code == "conflict"
    assert "expired" in error.message and "without reservation_id" in error.message
    assert not AIUsageRequest.objects.filter(user=member).exists()
    # Recorded without it, the request is charged in full, and the hold is given back on the
    # way (the refused call changed nothing, this one releases it lazily).
    record(member, model, request_id="late")
    assert used(member) == (1_500, Decimal("0.001250"))
    assert QuotaReservation.objects.get(pk=reservation.reservation_id).released_at is not None


def test_a_record_without_a_reservation_is_charged_in_full(member, model):
    record(member, model)
    assert used(member) == (1_500, Decimal("0.001250"))


# Expiry ------------------------------------------------------------------------------------------


def test_without_the_worker_the_next_reservation_gives_expired_holds_back(member):
    stale = reserve(member, 90_000, "0.90")
    expire(stale.reservation_id)
    # 10 001 tokens fit only once the 90 000 held are given back.
    fresh = reserve(member, 10_001, "0.01")
    assert used(member) == (10_001, Decimal("0.01"))
    assert QuotaReservation.objects.get(pk=stale.reservation_id).released_at is not None
    assert QuotaReservation.objects.get(pk=fresh.reservation_id).released_at is None


def test_the_next_reservation_releases_even_when_the_new_one_would_fit(member):
    stale = reserve(member, 1_000, "0.01")
    expire(stale.reservation_id)
    reserve(member, 5, "0")
    assert used(member) == (5, Decimal(0))


def test_the_worker_job_gives_expired_holds_back(member):
    stale = reserve(member, 40_000, "0.40")
    live = reserve(member, 1_000, "0.01")
    expire(stale.reservation_id)
    with transaction.atomic():
        assert tasks.release_quota_reservations(0) == {"released": 1, "pruned": 0}
    assert used(member) == (1_000, Decimal("0.01"))
    assert QuotaReservation.objects.get(pk=live.reservation_id).released_at is None
    with transaction.atomic():
        assert tasks.release_quota_reservations(0) == {"released": 0, "pruned": 0}
    assert used(member) == (1_000, Decimal("0.01"))


def test_closed_reservations_are_pruned_after_a_week(member, model):
    settled = reserve(member)
    record(member, model, reservation_id=settled.reservation_id)
    open_one = reserve(member, 10, "0")
    long_ago = timezone.now() - timedelta(days=8)
    QuotaReservation.objects.filter(pk=settled.reservation_id).update(
        created_at=long_ago, expires_at=long_ago + timedelta(minutes=15)
    )
    result = services.quota_reservations_release_expired()
    assert result == {"released": 0, "pruned": 1}
    assert list(QuotaReservation.objects.values_list("pk", flat=True)) == [open_one.reservation_id]


def test_a_hold_of_an_ended_period_gives_nothing_back_to_the_new_one(member, model):
    """November's hold went with November's counters: settling it in December charges the
    request in full."""
    reservation = reserve(member, 50_000, "0.50")
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    UserQuota.objects.filter(user=member).update(period_start=last_month, period_end=this_month)
    QuotaReservation.objects.filter(pk=reservation.reservation_id).update(period_start=last_month)
    record(member, model, reservation_id=reservation.reservation_id)
    assert used(member) == (1_500, Decimal("0.001250"))


def test_a_staff_reset_keeps_the_holds_still_open(member, model):
    reservation = reserve(member, 10_000, "0.10")
    record(member, model)  # 1 500 used besides the hold
    with transaction.atomic(), rls.service_context():
        assert services.quota_reset(user_id=member.id) is True
    assert used(member) == (10_000, Decimal("0.10"))
    record(member, model, reservation_id=reservation.reservation_id)
    assert used(member) == (1_500, Decimal("0.001250"))


def test_a_reservation_lives_between_one_second_and_a_day(member):
    for ttl in (0, 86_401):
        with (
            pytest.raises(errors.QuotaError) as refused,
            transaction.atomic(),
            rls.user_context(member, may_record=True),
        ):
            services.quota_consume(user_id=member.id, tokens=1, cost=Decimal(0), ttl_seconds=ttl)
        assert refused.value.code == errors.INVALID
    assert used(member) == (0, Decimal(0))


def test_the_runtime_role_cannot_write_reservations(member):
    reservation = reserve(member)
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        rls.user_context(member, may_record=True),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE quota_reservations SET tokens = 0 WHERE id = %s", [reservation.reservation_id]
        )
    assert used(member) == (10_000, Decimal("0.10"))


def test_users_see_their_own_reservations_and_staff_all(member):
    mine = reserve(member)
    other = UserFactory()
    quota_for(other, "free")
    theirs = reserve(other)
    with transaction.atomic(), rls.user_context(member):
        assert list(QuotaReservation.objects.values_list("pk", flat=True)) == [mine.reservation_id]
    with transaction.atomic(), rls.user_context(UserFactory(is_staff=True)):
        assert set(QuotaReservation.objects.values_list("pk", flat=True)) == {
            mine.reservation_id,
            theirs.reservation_id,
        }


# Concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_records_naming_one_reservation_settle_it_once():
    """Eight different requests race to settle one reservation: one wins, seven are refused,
    and the quota is charged exactly once."""
    user = UserFactory()
    quota_for(user, "free")
    model = catalog_model("gpt-5-mini")
    reservation = reserve(user, 20_000, "0.20")
    count = 8
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def settle(index: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            record(
                user, model, request_id=f"race-{index}", reservation_id=reservation.reservation_id
            )
            outcome = "recorded"
        except usage_services.UsageError as error:
            outcome = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=settle, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict"] * 7 + ["recorded"]
    assert AIUsageRequest.objects.filter(user=user).count() == 1
    assert used(user) == (1_500, Decimal("0.001250"))
