"""Demo plans over time: subscriptions and their payments.

- Everyone has had a free subscription since sign-up (as registration creates it); paid users
  upgraded before the usage window (some through pro on the way to team, or team to
  enterprise, which staff assign and invoice yearly), a few free users canceled a paid plan;
- a few current paid subscriptions are past due (their renewal failed in the last days) or set
  to cancel, or to downgrade, at the end of their period;
- one payment per billing period of every paid subscription (the provider's checkout, then
  ``invoice.paid``); a few failed first and were paid on a retry.

Plan changes happen before the window, so a person's limits are the same over all of it (the
alerts computed from the usage rows use the current plan's limits).
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass

from witchcraft.demo import bulk
from witchcraft.demo.bulk import NULL, esc, money, opt_ts, ts
from witchcraft.demo.plan import Person, Tier, Window
from witchcraft.demo.registration import Registrations
from witchcraft.demo.trail import Trail

SUBSCRIPTION_COLUMNS = (
    "id", "user_id", "tier_id", "status", "billing_cycle", "current_period_start",
    "current_period_end", "cancel_at_period_end", "scheduled_tier_id", "canceled_at",
    "payment_provider", "provider_customer_id", "provider_subscription_id", "provider_event_at",
    "created_at", "updated_at",
)  # fmt: skip
PAYMENT_COLUMNS = (
    "user_id", "subscription_id", "amount", "currency", "status", "description",
    "payment_provider", "provider_payment_id", "period_start", "period_end", "created_at",
)  # fmt: skip
DAY = bulk.US_PER_DAY
MINUTE = 60 * bulk.US_PER_SECOND
GRACE = 7 * DAY  # a past-due subscription keeps its plan this long after its period
PROVIDER = "stripe"
INVOICE_PROVIDER = "invoice"  # enterprise contracts are invoiced
PAYMENT_FAILURE_SHARE = 0.025


def add_months(at: int, months: int) -> int:
    """``at`` moved by whole calendar months (the day clamped to the month's length)."""
    moment = bulk.moment(at)
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return bulk.micros(moment.replace(year=year, month=month + 1, day=day))


def month_start(at: int) -> int:
    moment = bulk.moment(at)
    return bulk.micros(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0))


@dataclass
class Plan:
    """One subscription of a person's history: ``tier`` from ``start`` to ``end`` (None: the
    current one)."""

    tier: Tier
    start: int
    end: int | None
    cycle: str = "monthly"
    id: int = 0


class SubscriptionWriter:
    def __init__(
        self,
        loader: bulk.Loader,
        ids: bulk.Ids,
        window: Window,
        rng: random.Random,
        tiers: dict[str, Tier],
        trail: Trail,
        registrations: Registrations,
    ):
        self.subscriptions = loader.table("user_subscriptions", SUBSCRIPTION_COLUMNS)
        # The first plan is the free subscription registration made: its row is dated.
        self.registered = registrations.table("user_subscriptions", SUBSCRIPTION_COLUMNS)
        self.payments = loader.table("payment_history", PAYMENT_COLUMNS)
        self.ids = ids
        self.window = window
        self.now = window.now
        self.rng = rng
        self.tiers = tiers
        self.trail = trail
        self.payment_counter = 0

    def write(self, person: Person, ip: str) -> Tier:
        """The person's subscriptions and payments; return the current plan."""
        history = self._history(person)
        self._subscriptions(person, history, ip)
        return history[-1].tier

    def _history(self, person: Person) -> list[Plan]:
        """The person's subscriptions, oldest first; the last is the current one."""
        rng = self.rng
        free = self.tiers["free"]
        latest = self.window.start - DAY  # plan changes happen before the window
        if person.tier.slug == "free":
            if person.joined < latest - 90 * DAY and rng.random() < 0.03:
                upgraded = person.joined + int(rng.uniform(0.1, 0.5) * (latest - person.joined))
                canceled = upgraded + int(rng.uniform(1.2, 3.5) * 30 * DAY)
                canceled = min(canceled, latest)
                return [
                    Plan(free, person.joined, upgraded),
                    Plan(self.tiers["pro"], upgraded, canceled),
                    Plan(free, canceled, None),
                ]
            return [Plan(free, person.joined, None)]
        upgraded = person.joined + int(rng.uniform(0.0, 0.8) * (latest - person.joined)) + MINUTE
        plans = [Plan(free, person.joined, upgraded)]
        stepping = {"team": "pro", "enterprise": "team"}.get(person.tier.slug)
        if stepping and rng.random() < 0.35 and latest - upgraded > 60 * DAY:
            moved = upgraded + int(rng.uniform(0.2, 0.8) * (latest - upgraded))
            plans.append(Plan(self.tiers[stepping], upgraded, moved))
            upgraded = moved
        yearly = person.tier.slug == "enterprise" or rng.random() < 0.12
        plans.append(Plan(person.tier, upgraded, None, "yearly" if yearly else "monthly"))
        return plans

    def _subscriptions(self, person: Person, history: list[Plan], ip: str) -> None:
        rng = self.rng
        now = self.now
        customer = f"cus_demo{person.number:05d}"
        for index, plan in enumerate(history):
            assert index or plan.tier.slug == "free", "the first plan is registration's"
            plan.id = person.subscription_id if index == 0 else self.ids.next()
            current = plan.end is None
            paid = plan.tier.monthly_price > 0
            status = "active" if current else "canceled"
            months = 12 if plan.cycle == "yearly" else 1
            if not paid:
                # Calendar months, as registration and monthly maintenance make them.
                start = month_start(plan.end if plan.end is not None else now)
                period = (start, add_months(start, 1))
            else:
                renewals = 0
                while add_months(plan.start, (renewals + 1) * months) <= (plan.end or now):
                    renewals += 1
                period = (
                    add_months(plan.start, renewals * months),
                    add_months(plan.start, (renewals + 1) * months),
                )
            if plan.end is not None:
                period = (period[0], max(period[0] + bulk.US_PER_SECOND, min(period[1], plan.end)))
            cancel_at_end, scheduled = False, NULL
            if paid and current and plan.cycle == "monthly":
                roll = rng.random()
                if roll < 0.02 and now - period[0] < GRACE and period[0] > plan.start:
                    # The renewal at period[0] failed: the period that ended stays the current
                    # one for the grace days (monthly maintenance expires it after them).
                    status = "past_due"
                    period = (add_months(period[0], -1), period[0])
                elif roll < 0.07:
                    cancel_at_end = True
                    if plan.tier.slug == "team" and rng.random() < 0.5:
                        scheduled = str(self.tiers["pro"].id)
                    when = period[0] + int(rng.random() * (now - period[0]))
                    self.trail.event(
                        person,
                        when,
                        "subscription_change_scheduled",
                        ip,
                        details={"tier": "pro" if scheduled != NULL else "free"},
                        target=("user_subscription", plan.id),
                    )
            provider, reference = "", ""
            if paid and plan.tier.slug != "enterprise":
                provider, reference = PROVIDER, f"sub_demo{person.number:05d}x{index}"
            last_event = self._payments(person, plan, provider, status == "past_due", ip)
            if paid and index > 0:
                self.trail.event(
                    person,
                    plan.start,
                    "subscription_started",
                    ip,
                    details={"tier": plan.tier.slug, "provider": provider or "staff"},
                    target=("user_subscription", plan.id),
                )
            if plan.end is not None and paid and history[index + 1].tier.slug == "free":
                self.trail.event(
                    person,
                    plan.end,
                    "subscription_ended",
                    ip,
                    details={"provider": provider},
                    target=("user_subscription", plan.id),
                )
            updated = plan.end if plan.end is not None else max(period[0], plan.start)
            (self.registered if index == 0 else self.subscriptions).add(
                f"{plan.id}\t{person.id}\t{plan.tier.id}\t{status}\t{plan.cycle}\t"
                f"{ts(period[0])}\t{ts(period[1])}\t{bulk.boolean(cancel_at_end)}\t{scheduled}\t"
                f"{opt_ts(plan.end)}\t{provider}\t{customer if provider else ''}\t{reference}\t"
                f"{opt_ts(last_event)}\t{ts(plan.start)}\t{ts(updated)}"
            )

    def _payments(
        self, person: Person, plan: Plan, provider: str, past_due: bool, ip: str
    ) -> int | None:
        """One payment per billing period of a paid plan; return the last payment's time."""
        rng = self.rng
        tier = plan.tier
        if tier.monthly_price == 0:
            return None
        months = 12 if plan.cycle == "yearly" else 1
        amount = tier.yearly_price if plan.cycle == "yearly" else tier.monthly_price
        invoiced = not provider
        end = plan.end if plan.end is not None else self.now
        last = None
        start = plan.start
        first = True
        while start < end:
            next_start = add_months(start, months)
            paid_at = start + int(rng.uniform(0.2, 5) * MINUTE)
            if paid_at > self.now:
                break
            is_last = next_start > end
            self.payment_counter += 1
            reference = f"{'inv' if invoiced else 'in'}_demo{self.payment_counter:08d}"
            if invoiced:
                description = f"{tier.name} contract {bulk.moment(start).year}"
            else:
                description = f"Subscription to {tier.name}" if first else "Invoice paid"
            if (past_due and is_last) or (not first and rng.random() < PAYMENT_FAILURE_SHARE):
                self._payment(
                    person,
                    plan,
                    amount,
                    "failed",
                    "Payment failed",
                    provider or INVOICE_PROVIDER,
                    f"{reference}#failed-1",
                    start,
                    next_start,
                    paid_at,
                )
                self.trail.event(
                    person,
                    paid_at,
                    "payment_failed",
                    ip,
                    severity="warning",
                    details={"provider": provider},
                    target=("user_subscription", plan.id),
                )
                last = paid_at
                if past_due and is_last:
                    break
                paid_at += int(rng.uniform(1, 3) * DAY)
                if paid_at > self.now:
                    break
                self.trail.event(
                    person,
                    paid_at,
                    "subscription_reactivated",
                    ip,
                    details={"provider": provider},
                    target=("user_subscription", plan.id),
                )
            self._payment(
                person,
                plan,
                amount,
                "succeeded",
                description,
                provider or INVOICE_PROVIDER,
                reference,
                start,
                next_start,
                paid_at,
            )
            last = paid_at
            start = next_start
            first = False
        return last

    def _payment(
        self,
        person: Person,
        plan: Plan,
        amount: int,
        status: str,
        description: str,
        provider: str,
        reference: str,
        start: int,
        end: int,
        at: int,
    ) -> None:
        self.payments.add(
            f"{person.id}\t{plan.id}\t{money(amount)}\tUSD\t{status}\t{esc(description)}\t"
            f"{provider}\t{reference}\t{ts(start)}\t{ts(end)}\t{ts(at)}"
        )
