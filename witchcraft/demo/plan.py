"""The shape of a demo data set: options, the catalog it uses, the time window and the people.

Everything random is drawn from one ``random.Random(seed)`` in a fixed order, so the same
options (seed, sizes and ``now``) always give the same data.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import NormalDist
from zoneinfo import ZoneInfo

from witchcraft.demo import bulk, phrases

DEFAULT_PASSWORD = "witchcraft-demo"  # noqa: S105 - the published password of demo accounts
DEFAULT_SEED = 9
EMAIL_TEMPLATE = "demo-{number:0{width}d}@example.com"
# Demo accounts are recognised by both: the address and a mark in the profile's preferences.
EMAIL_REGEX = r"^demo-[0-9]+@example\.com$"
PROFILE_MARK = "demo"
MAX_USERS = 100_000
MAX_DAYS = 366
LOOKBACK_DAYS = 91  # sign-ins are drawn this far back (the audit trail's retention)

# Share of users per paid plan (the rest is free), and at least one each from this many users.
TIER_SHARES = (("enterprise", 0.002), ("team", 0.06), ("pro", 0.18))
TIER_SLUGS = ("free", "pro", "team", "enterprise")
MIN_USERS_FOR_EVERY_TIER = 4


@dataclass(frozen=True)
class TierHabits:
    """How the users of a plan use Witchcraft on an average working day."""

    requests: float  # API requests outside agent sessions
    sessions: float  # agent sessions started
    input_tokens: int  # median input tokens of a request
    dormant: float  # share of users without any usage in the window


HABITS = {
    "free": TierHabits(requests=2.7, sessions=0.075, input_tokens=170, dormant=0.12),
    "pro": TierHabits(requests=40.0, sessions=2.1, input_tokens=600, dormant=0.03),
    "team": TierHabits(requests=97.0, sessions=4.8, input_tokens=1_000, dormant=0.02),
    "enterprise": TierHabits(requests=350.0, sessions=15.0, input_tokens=1_600, dormant=0.0),
}
# A model at this input price (US dollars per million tokens) or more is a premium model: the
# free plan (features.premium_models false) does not use them.
PREMIUM_INPUT_PRICE = Decimal("1.25")


@dataclass(frozen=True)
class ModelHabits:
    weight: float  # popularity (cheap models dominate)
    ttft_ms: int  # median time to the first token
    tokens_per_second: int
    reasoning: bool = False  # spends part of its output on reasoning tokens
    agent: bool = False  # strong enough to drive an agent session


MODEL_HABITS = {
    "gpt-5-mini": ModelHabits(22, 900, 90, reasoning=True, agent=True),
    "gpt-4o-mini": ModelHabits(14, 350, 110),
    "gemini-2.5-flash": ModelHabits(14, 450, 160, reasoning=True, agent=True),
    "gemini-2.5-flash-lite": ModelHabits(10, 300, 220),
    "claude-haiku-4-5": ModelHabits(10, 400, 120, agent=True),
    "mistral-small-latest": ModelHabits(5, 300, 120),
    "codestral-latest": ModelHabits(4, 300, 140),
    "llama3.1:8b": ModelHabits(3, 150, 45),
    "qwen2.5-coder:7b": ModelHabits(2, 180, 40),
    "claude-sonnet-4-5": ModelHabits(7, 800, 60, reasoning=True, agent=True),
    "gpt-5": ModelHabits(4, 1_800, 60, reasoning=True, agent=True),
    "gemini-2.5-pro": ModelHabits(3, 1_500, 80, reasoning=True, agent=True),
    "gpt-4.1": ModelHabits(2, 600, 70, agent=True),
    "mistral-large-latest": ModelHabits(1, 600, 50, agent=True),
    "claude-opus-4-1": ModelHabits(0.5, 1_500, 35, reasoning=True, agent=True),
}
UNKNOWN_MODEL = ModelHabits(1, 700, 80)


@dataclass(frozen=True)
class DemoOptions:
    users: int
    days: int
    seed: int = DEFAULT_SEED
    password: str = DEFAULT_PASSWORD
    now: datetime | None = None  # the end of the window; the current time when None


@dataclass(frozen=True)
class Model:
    id: int
    provider_id: int
    provider: str  # slug
    name: str
    context_window: int
    prices: tuple[int, int, int]  # input, output, cached input: micro-dollars per 1M tokens
    price_text: str  # the three prices as COPY fields
    ref_text: str  # provider id and model id as COPY fields
    premium: bool
    habits: ModelHabits
    caches: bool  # cached input is cheaper than fresh input


@dataclass(frozen=True)
class Tier:
    id: int
    slug: str
    name: str
    monthly_price: int  # micro-dollars
    yearly_price: int
    token_limit: int
    cost_limit: int  # micro-dollars
    premium_models: bool


def _micro(amount: Decimal) -> int:
    return int(amount * 1_000_000)


@dataclass
class Catalog:
    """The active models (of active providers) and the plans, as the database has them."""

    models: list[Model]
    tiers: dict[str, Tier]

    @classmethod
    def load(cls, cursor) -> Catalog:
        cursor.execute(
            "SELECT m.id, m.provider_id, p.slug, m.name, m.context_window,"
            "       m.input_price_per_million, m.output_price_per_million,"
            "       m.cached_input_price_per_million"
            "  FROM public.ai_models m JOIN public.ai_providers p ON p.id = m.provider_id"
            " WHERE m.is_active AND p.is_active ORDER BY m.id"
        )
        models = []
        for mid, pid, slug, name, window, price_in, price_out, price_cached in cursor.fetchall():
            models.append(
                Model(
                    id=mid,
                    provider_id=pid,
                    provider=slug,
                    name=name,
                    context_window=window,
                    prices=(_micro(price_in), _micro(price_out), _micro(price_cached)),
                    price_text=f"{price_in:f}\t{price_out:f}\t{price_cached:f}",
                    ref_text=f"{pid}\t{mid}",
                    premium=price_in >= PREMIUM_INPUT_PRICE,
                    habits=MODEL_HABITS.get(name, UNKNOWN_MODEL),
                    caches=price_cached < price_in,
                )
            )
        cursor.execute(
            "SELECT id, slug, name, monthly_price, yearly_price, monthly_token_limit,"
            "       monthly_cost_limit, coalesce((features->>'premium_models')::boolean, true)"
            "  FROM public.subscription_tiers WHERE is_active"
        )
        tiers = {
            row[1]: Tier(
                id=row[0],
                slug=row[1],
                name=row[2],
                monthly_price=_micro(row[3]),
                yearly_price=_micro(row[4]),
                token_limit=row[5],
                cost_limit=_micro(row[6]),
                premium_models=row[7],
            )
            for row in cursor.fetchall()
        }
        return cls(models=models, tiers=tiers)

    def missing(self) -> list[str]:
        """What the demo needs and the catalog lacks (empty when all is there)."""
        gaps = [f"the {slug} plan" for slug in TIER_SLUGS if slug not in self.tiers]
        if not any(not model.premium for model in self.models):
            gaps.append("an active standard (non-premium) model")
        return gaps


@dataclass(frozen=True)
class Window:
    """The days of demo usage: ``days`` UTC days ending with today, cut at ``now``."""

    now: int  # microseconds since the epoch
    first_day: int  # day number (days since the epoch) of the first day
    days: int
    period_starts: tuple[int, ...]  # the UTC month starts from the first day's month to now's

    @classmethod
    def ending(cls, now: datetime, days: int) -> Window:
        now = now.astimezone(UTC)
        today = bulk.micros(now) // bulk.US_PER_DAY
        first = today - days + 1
        month = bulk.moment(first * bulk.US_PER_DAY).replace(day=1)
        starts = []
        while month <= now:
            starts.append(bulk.micros(month))
            month = (month + timedelta(days=32)).replace(day=1)
        return cls(now=bulk.micros(now), first_day=first, days=days, period_starts=tuple(starts))

    @property
    def start(self) -> int:
        return self.first_day * bulk.US_PER_DAY

    @property
    def period_start(self) -> int:
        """The start of the current quota period (this UTC month)."""
        return self.period_starts[-1]

    @property
    def period_end(self) -> int:
        start = bulk.moment(self.period_start)
        return bulk.micros((start + timedelta(days=32)).replace(day=1))

    @property
    def months_back(self) -> int:
        return len(self.period_starts) - 1


@dataclass
class Person:
    """One demo user and the habits their rows are drawn from."""

    number: int  # 1-based, in the email address
    email: str
    full_name: str
    tier: Tier
    zone: str
    locale: str
    company: str
    joined: int  # microseconds since the epoch
    dormant: bool
    requests_per_day: float
    sessions_per_day: float
    input_tokens: int  # median input tokens of a request
    models: list[Model]  # the models this person uses ...
    cum_weights: list[float]  # ... and how often (cumulative weights)
    tag: str  # hex digits in the person's request ids
    agent_model: Model
    client: tuple[str, str]
    user_agent: str
    id: int = 0  # set at registration (witchcraft.demo.registration)
    subscription_id: int = 0  # the free subscription registration made
    offsets: dict[int, int] = field(default_factory=dict)  # day -> UTC offset in microseconds


def email_width(users: int) -> int:
    """Digits of the number in demo addresses (demo-00001@example.com for up to 99,999)."""
    return max(5, len(str(users)))


def tier_counts(users: int) -> dict[str, int]:
    """How many users each plan gets: mostly free, some pro, fewer team, a couple enterprise."""
    floor = 1 if users >= MIN_USERS_FOR_EVERY_TIER else 0
    counts = {slug: max(floor, round(users * share)) for slug, share in TIER_SHARES}
    counts["free"] = users - sum(counts.values())
    return counts


# Quantiles of the standard normal distribution: a draw is one of them, picked at random (a
# good enough normal for demo data, and several times faster than random.gauss).
NORMAL = tuple(NormalDist().inv_cdf((i + 0.5) / 4096) for i in range(4096))


def lognormal(rng: random.Random, mu: float, sigma: float) -> float:
    """exp(N(mu, sigma))."""
    return math.exp(mu + sigma * NORMAL[rng.getrandbits(12)])


def _lognormal(rng: random.Random, sigma: float) -> float:
    """A multiplier with mean 1."""
    return lognormal(rng, -sigma * sigma / 2, sigma)


def pick(rng: random.Random, items: list, cum_weights: list[float]):
    """One of ``items`` (as random.choices, for one item, faster)."""
    hi = len(items) - 1
    return items[bisect.bisect(cum_weights, rng.random() * cum_weights[-1], 0, hi)]


def people(options: DemoOptions, catalog: Catalog, window: Window, rng: random.Random):
    """The demo users, in email order."""
    slugs = [slug for slug, count in tier_counts(options.users).items() for _ in range(count)]
    rng.shuffle(slugs)
    width = email_width(options.users)
    zones, zone_weights = zip(*(((z, loc), w) for z, loc, w in phrases.ZONES), strict=True)
    result = []
    for number, slug in enumerate(slugs, start=1):
        tier = catalog.tiers[slug]
        habits = HABITS[slug]
        first = rng.choice(phrases.FIRST_NAMES)
        last = rng.choice(phrases.LAST_NAMES)
        zone, locale = rng.choices(zones, weights=zone_weights)[0]
        # Most signed up months ago; a few free users during the window.
        if slug == "free" and rng.random() < 0.05:
            joined = window.start + int(rng.random() * (window.now - window.start) * 0.9)
        else:
            joined = window.start - int((2 + rng.random() * 540) * bulk.US_PER_DAY)
        usable = [m for m in catalog.models if tier.premium_models or not m.premium]
        favourite = rng.choices(usable, weights=[m.habits.weight for m in usable])[0]
        weights = [m.habits.weight * (4.0 if m is favourite else 1.0) for m in usable]
        agent_choices = [m for m in usable if m.habits.agent] or usable
        agent_model = rng.choices(agent_choices, weights=[m.habits.weight for m in agent_choices])
        activity = _lognormal(rng, 0.6)
        works_somewhere = slug in ("team", "enterprise") or rng.random() < 0.3
        company = rng.choice(phrases.COMPANIES) if works_somewhere else ""
        result.append(
            Person(
                number=number,
                email=EMAIL_TEMPLATE.format(number=number, width=width),
                full_name=f"{first} {last}",
                tier=tier,
                zone=zone,
                locale=locale,
                company=company,
                joined=joined,
                dormant=rng.random() < habits.dormant,
                requests_per_day=habits.requests * activity,
                sessions_per_day=habits.sessions * activity * rng.uniform(0.5, 1.5),
                input_tokens=max(40, int(habits.input_tokens * _lognormal(rng, 0.5))),
                models=usable,
                cum_weights=list(itertools.accumulate(weights)),
                agent_model=agent_model[0],
                tag=f"{rng.getrandbits(32):08x}",
                client=rng.choice(phrases.CLIENTS),
                user_agent=rng.choice(phrases.USER_AGENTS),
            )
        )
    return result


def utc_offsets(zone: str, window: Window) -> dict[int, int]:
    """The zone's UTC offset (microseconds) at local noon of each day of the window, and of
    the sign-in history before it."""
    tz = ZoneInfo(zone)
    offsets = {}
    today = window.first_day + window.days - 1
    for day in range(min(window.first_day, today - LOOKBACK_DAYS) - 1, today + 2):
        noon = bulk.moment(day * bulk.US_PER_DAY + 12 * 3600 * bulk.US_PER_SECOND)
        offset = noon.astimezone(tz).utcoffset() or timedelta(0)
        offsets[day] = int(offset.total_seconds()) * bulk.US_PER_SECOND
    return offsets


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
