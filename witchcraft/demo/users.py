"""Demo accounts: users, profiles, quotas, API tokens, sign-ins; plans and the trail through
:mod:`~witchcraft.demo.subscriptions` and :mod:`~witchcraft.demo.trail`.

Each person is registered by ``create_user_with_profile`` (:mod:`~witchcraft.demo.registration`);
their registration rows are then dated as their life since then left them, beside what it added:

- the user and profile (marked as demo), verified soon after sign-up (a few recent sign-ups
  are not: they cannot have API tokens, so they use nothing);
- their plans over time and payments;
- the quota of the current UTC month with the limits of the current plan (what it used is
  computed from the usage rows afterwards);
- API tokens (a few revoked), and the audit events: sign-up, verification, sign-ins over the
  last 90 days (a few failed, and one brute-force attempt that locked an account), tokens,
  password changes.
"""

from __future__ import annotations

import random

from witchcraft.demo import bulk, phrases
from witchcraft.demo.activity import local_times
from witchcraft.demo.bulk import NULL, esc, money, opt_ts, ts
from witchcraft.demo.plan import PROFILE_MARK, Catalog, Person, Window
from witchcraft.demo.registration import Registrations
from witchcraft.demo.subscriptions import SubscriptionWriter
from witchcraft.demo.trail import RETENTION, Trail

USER_COLUMNS = (
    "id", "password", "last_login", "is_superuser", "email", "full_name", "is_active",
    "is_staff", "date_joined", "deleted_at", "email_verified_at",
)  # fmt: skip
PROFILE_COLUMNS = (
    "user_id", "display_name", "avatar_url", "company", "timezone", "locale", "preferences",
    "created_at", "updated_at",
)  # fmt: skip
QUOTA_COLUMNS = (
    "user_id", "tokens_limit", "tokens_used", "cost_limit", "cost_used", "period_start",
    "period_end", "updated_at",
)  # fmt: skip
TOKEN_COLUMNS = (
    "id", "user_id", "name", "token_hash", "prefix", "scopes", "created_at", "expires_at",
    "last_used_at", "last_used_ip", "revoked_at",
)  # fmt: skip

DAY = bulk.US_PER_DAY
MINUTE = 60 * bulk.US_PER_SECOND
LOGINS_PER_WEEK = {"free": 1.5, "pro": 3.0, "team": 3.5, "enterprise": 4.0}
TOKEN_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
BRUTE_FORCE_IP = "192.0.2.66"
BRUTE_FORCE_AGENT = "python-requests/2.32.3"
BRUTE_FORCE_TRIES = 12


class AccountWriter:
    def __init__(
        self,
        loader: bulk.Loader,
        ids: dict[str, bulk.Ids],
        window: Window,
        rng: random.Random,
        catalog: Catalog,
        password_hash: str,
        people: int,
        registrations: Registrations,
    ):
        self.users = registrations.table("users", USER_COLUMNS)
        self.profiles = registrations.table("user_profiles", PROFILE_COLUMNS)
        self.quotas = registrations.table("user_quotas", QUOTA_COLUMNS)
        self.tokens = loader.table("access_tokens", TOKEN_COLUMNS)
        self.ids = ids
        self.window = window
        self.now = window.now
        self.rng = rng
        self.trail = Trail(loader, ids["audit_logs"], window.now, rng)
        self.plans = SubscriptionWriter(
            loader, ids["user_subscriptions"], window, rng, catalog.tiers, self.trail, registrations
        )
        self.password = esc(password_hash)
        self.attacked = rng.randint(1, people)  # the account of the brute-force attempt

    # --- one person ----------------------------------------------------------------------------
    def write(self, person: Person) -> None:
        rng = self.rng
        assert person.id, "registered first (witchcraft.demo.registration.register)"
        ip = self._home_ip()
        verified = None
        if person.joined < self.window.start or rng.random() < 0.7:
            verified = person.joined + int(rng.uniform(1, 90) * MINUTE)
        else:
            person.dormant = True  # cannot have API tokens, so uses nothing
        self.trail.event(
            person,
            person.joined,
            "user_created",
            ip,
            details={"tier": "free"},
            target=("user", person.id),
        )
        self.trail.event(person, person.joined + bulk.US_PER_SECOND, "verification_sent", ip)
        if verified is not None:
            self.trail.event(person, verified, "email_verified", ip)
        last_login = self._logins(person, ip)
        tier = self.plans.write(person, ip)
        if verified is not None:
            self._access_tokens(person, ip)
        if rng.random() < 0.03 and verified is not None:
            self.trail.event(person, self._recent(person), "password_changed", ip)
        if person.number == self.attacked:
            self._brute_force(person)
        self.users.add(
            f"{person.id}\t{self.password}\t{opt_ts(last_login)}\tf\t{person.email}\t"
            f"{esc(person.full_name)}\tt\tf\t{ts(person.joined)}\t{NULL}\t{opt_ts(verified)}"
        )
        preferences = {PROFILE_MARK: True, "theme": rng.choice(("system", "dark", "light"))}
        self.profiles.add(
            f"{person.id}\t{esc(person.full_name.split()[0])}\t\t{esc(person.company)}\t"
            f"{person.zone}\t{person.locale}\t{esc(phrases.json_text(preferences))}\t"
            f"{ts(person.joined)}\t{ts(verified or person.joined)}"
        )
        period_start, period_end = self.window.period_start, self.window.period_end
        self.quotas.add(
            f"{person.id}\t{tier.token_limit}\t0\t{money(tier.cost_limit)}\t0\t"
            f"{ts(period_start)}\t{ts(period_end)}\t{ts(max(period_start, person.joined))}"
        )

    # --- plans -----------------------------------------------------------------------------------
    # --- sign-ins, tokens ------------------------------------------------------------------------
    def _recent(self, person: Person) -> int:
        """A moment in the last 90 days (and after sign-up)."""
        earliest = max(person.joined + MINUTE, self.now - RETENTION)
        return earliest + int(self.rng.random() * max(0, self.now - earliest))

    def _logins(self, person: Person, ip: str) -> int | None:
        rng = self.rng
        earliest = max(person.joined, self.now - RETENTION)
        days = (self.now - earliest) // DAY
        last = None
        for offset in range(days + 1):
            day = earliest // DAY + offset
            if rng.random() >= LOGINS_PER_WEEK[person.tier.slug] / 7:
                continue
            for at in local_times(rng, person, day, 1):
                if not earliest < at <= self.now:
                    continue
                if rng.random() < 0.04:
                    self.trail.event(
                        person,
                        at - int(rng.uniform(10, 90) * bulk.US_PER_SECOND),
                        "login_failed",
                        ip,
                        details={"email": person.email, "ip_locked": False},
                    )
                self.trail.event(person, at, "login_succeeded", ip, details={"method": "password"})
                last = at if last is None else max(last, at)
        return last

    def _brute_force(self, person: Person) -> None:
        rng = self.rng
        days = min(6, self.window.days)
        at = max(person.joined, self.now - int(rng.uniform(0.5, days) * DAY))
        details = {"email": person.email, "ip_locked": False}
        for _ in range(BRUTE_FORCE_TRIES):
            at += int(rng.uniform(2, 6) * bulk.US_PER_SECOND)
            self.trail.event(
                person,
                min(at, self.now),
                "login_failed",
                BRUTE_FORCE_IP,
                details=details,
                user_agent=BRUTE_FORCE_AGENT,
            )
        self.trail.event(
            person,
            min(at + bulk.US_PER_SECOND, self.now),
            "login_locked",
            BRUTE_FORCE_IP,
            details=details,
            user_agent=BRUTE_FORCE_AGENT,
        )

    def _access_tokens(self, person: Person, ip: str) -> None:
        rng = self.rng
        now = self.now
        count = {"free": 1, "pro": 2, "team": 3, "enterprise": 4}[person.tier.slug]
        count = rng.randint(0 if person.dormant else 1, count)
        for _ in range(count):
            token_id = self.ids["access_tokens"].next()
            ttl = rng.choice((7, 14, 30, 30)) * DAY  # lifetimes are capped at 30 days
            earliest = max(person.joined + MINUTE, now - ttl + DAY)
            created = earliest + int(rng.random() * max(0, now - MINUTE - earliest))
            expires = created + ttl
            revoked = None
            if rng.random() < 0.08:
                revoked = max(created, now - 25 * DAY) + int(rng.random() * 20 * DAY)
                revoked = min(revoked, now)
            used_until = revoked if revoked is not None else now
            last_used = (
                None if person.dormant else max(created, used_until - int(rng.uniform(0, 3) * DAY))
            )
            name = rng.choice(phrases.TOKEN_NAMES)
            scopes = rng.choice(phrases.TOKEN_SCOPES)
            prefix = "wc_" + "".join(rng.choice(TOKEN_ALPHABET) for _ in range(7))
            self.tokens.add(
                f"{token_id}\t{person.id}\t{name}\t{rng.getrandbits(256):064x}\t{prefix}\t"
                f"{bulk.text_array(scopes)}\t{ts(created)}\t{ts(expires)}\t{opt_ts(last_used)}\t"
                f"{ip if last_used is not None else NULL}\t{opt_ts(revoked)}"
            )
            self.trail.event(
                person,
                created,
                "token_created",
                ip,
                target=("access_token", token_id),
                details={
                    "name": name,
                    "prefix": prefix,
                    "scopes": list(scopes),
                    "expires_at": bulk.moment(expires).isoformat(),
                },
            )
            if revoked is not None:
                self.trail.event(
                    person,
                    revoked,
                    "token_revoked",
                    ip,
                    target=("access_token", token_id),
                    details={"name": name},
                )

    def _home_ip(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
        return f"{'198.51.100' if roll < 0.6 else '203.0.113'}.{rng.randint(1, 254)}"
