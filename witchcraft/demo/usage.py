"""Usage rows (``ai_usage_requests``) and their key rows (``ai_usage_request_keys``).

A row is drawn the way a real client's request turns out: a model from the person's mix, token
counts (cached input on models that price it lower, reasoning tokens on reasoning models),
latency and time to first token from the model's speed, an outcome (2-5 % errors, timeouts and
cancellations; a provider incident of two hours; ``rejected`` once the person's quota is used
up), the catalog's prices copied onto the row and the cost computed as ``record_ai_usage`` does:
``round(((input - cached) * input_price + cached * cached_price + output * output_price) / 1e6,
6)``, here in whole micro-dollars so that the rounding is the database's (half away from zero).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from math import exp

from witchcraft.demo import bulk, phrases
from witchcraft.demo.bulk import NULL, esc, ts
from witchcraft.demo.plan import NORMAL, Model, Person, Tier, Window, pick

USAGE_COLUMNS = (
    "id", "created_at", "user_id", "provider_id", "model_id", "agent_session_id",
    "agent_message_id", "request_id", "input_tokens", "output_tokens", "cached_input_tokens",
    "reasoning_tokens", "total_tokens", "cost", "input_price_per_million",
    "output_price_per_million", "cached_input_price_per_million", "latency_ms",
    "time_to_first_token_ms", "status", "error_code", "error_message", "metadata",
)  # fmt: skip
KEY_COLUMNS = ("usage_id", "user_id", "request_id", "agent_message_id", "created_at")

ERROR_SHARE = 0.019
TIMEOUT_SHARE = 0.007
CANCELLED_SHARE = 0.006
OUTCOME_SHARES = ERROR_SHARE + TIMEOUT_SHARE + CANCELLED_SHARE  # all but success
INCIDENT_ERROR_SHARE = 0.3
INCIDENT_HOURS = 2
# Once a quota is used up, most people stop; some retry and are refused (rows 'rejected').
REJECTED_RETRY_SHARE = 0.25
TIMEOUT_MS = 60_000
MAX_OUTPUT_TOKENS = 16_000

PROVIDER_ERRORS = {
    "openai": (
        ("rate_limit_exceeded", "Rate limit reached for requests per minute."),
        ("server_error", "The server had an error while processing your request."),
        ("context_length_exceeded", "This model's maximum context length was exceeded."),
    ),
    "anthropic": (
        ("overloaded_error", "Overloaded."),
        ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
        ("api_error", "Internal server error."),
    ),
    "google": (
        ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        ("RESOURCE_EXHAUSTED", "Quota exceeded for requests per minute."),
        ("INTERNAL", "An internal error has occurred."),
    ),
    "mistral": (
        ("service_unavailable", "Service unavailable."),
        ("rate_limited", "Requests rate limit exceeded."),
    ),
    "ollama": (
        ("model_not_loaded", "The model is loading; try again."),
        ("connection_refused", "Could not reach the local Ollama server."),
    ),
}
DEFAULT_ERRORS = (("provider_error", "The provider returned an error."),)
QUOTA_REFUSALS = {
    "tokens": ("quota_exceeded", "Monthly token quota used up."),
    "cost": ("quota_exceeded", "Monthly cost quota used up."),
}


class Quota:
    """What a person's quota periods have used so far, as check_and_consume_quota sees it: a
    request is let through while the period's use is under both limits (its estimate fits),
    and refused from the moment one of them is reached."""

    def __init__(self, window: Window, tier: Tier):
        self.starts = window.period_starts
        self.token_limit = tier.token_limit
        self.cost_limit = tier.cost_limit
        self.tokens = [0] * len(self.starts)
        self.cost = [0] * len(self.starts)

    def refusal(self, at: int) -> str | None:
        """None when a request at ``at`` is allowed, else the metric that is used up."""
        period = bisect.bisect_right(self.starts, at) - 1
        if self.tokens[period] >= self.token_limit:
            return "tokens"
        if self.cost[period] >= self.cost_limit:
            return "cost"
        return None

    def book(self, at: int, tokens: int, cost: int) -> None:
        period = bisect.bisect_right(self.starts, at) - 1
        self.tokens[period] += tokens
        self.cost[period] += cost


@dataclass(slots=True)
class Draw:
    """One request's numbers before it is written."""

    model: Model
    input_tokens: int
    output_tokens: int
    cached: int
    reasoning: int
    latency_ms: int | None
    ttft_ms: int | None
    status: str = "success"
    error_code: str = ""
    error_message: str = ""


class UsageWriter:
    """Draws usage rows and adds them (and their keys) to the load."""

    def __init__(
        self,
        loader: bulk.Loader,
        ids: bulk.Ids,
        window: Window,
        rng: random.Random,
        models: list[Model],
    ):
        self.rows = loader.table("ai_usage_requests", USAGE_COLUMNS)
        self.keys = loader.table("ai_usage_request_keys", KEY_COLUMNS)
        self.ids = ids
        self.rng = rng
        self.counter = 0
        self._metadata: dict[tuple[str, str, bool], str] = {}
        self._success: dict[tuple[str, str, bool], str] = {}
        # A provider's bad afternoon (an empty interval when the window has no weekday).
        self.incident_provider, self.incident_from, self.incident_to = self._incident(
            window, models
        )

    def _incident(self, window: Window, models: list[Model]) -> tuple[str, int, int]:
        """A provider's bad afternoon: (provider, from, to) on a weekday of the window."""
        providers = sorted({m.provider for m in models if m.provider in PROVIDER_ERRORS})
        weekdays = [
            day
            for day in range(window.first_day, window.first_day + window.days - 1)
            if (day + 3) % 7 < 5  # day 0 (1970-01-01) was a Thursday
        ]
        if not providers or not weekdays:
            return "", 0, 0
        provider = "anthropic" if "anthropic" in providers else self.rng.choice(providers)
        start = self.rng.choice(weekdays) * bulk.US_PER_DAY + 14 * 3600 * bulk.US_PER_SECOND
        return provider, start, start + INCIDENT_HOURS * 3600 * bulk.US_PER_SECOND

    def metadata(self, person: Person, *, agent: bool) -> str:
        key = (*person.client, agent)
        text = self._metadata.get(key)
        if text is None:
            value = {"client": person.client[0], "version": person.client[1]}
            if agent:
                value["via"] = "agent"
            text = self._metadata[key] = esc(phrases.json_text(value))
        return text

    # --- drawing -----------------------------------------------------------------------------
    def draw(
        self, model: Model, input_tokens: int, output_tokens: int, *, at: int, may_fail: bool = True
    ) -> Draw:
        """A request to ``model`` of about these sizes at ``at``, with its outcome."""
        rng = self.rng
        random_ = rng.random
        habits = model.habits
        input_tokens = max(8, min(input_tokens, model.context_window // 2))
        output_tokens = max(3, min(output_tokens, MAX_OUTPUT_TOKENS))
        cached = 0
        if model.caches and input_tokens >= 1024 and random_() < 0.35:
            cached = int(input_tokens * (0.3 + 0.6 * random_()))
        reasoning = 0
        if habits.reasoning and random_() < 0.6:
            reasoning = int(output_tokens * (0.3 + 1.2 * random_()))
            output_tokens += reasoning
        bits = rng.getrandbits(24)  # two normal draws (see plan.lognormal)
        ttft = int(habits.ttft_ms * exp(0.45 * NORMAL[bits & 4095]))
        generation = output_tokens * 1000 / habits.tokens_per_second
        latency = ttft + int(generation * exp(0.25 * NORMAL[bits >> 12]))
        draw = Draw(model, input_tokens, output_tokens, cached, reasoning, latency, ttft)
        if may_fail:
            roll = random_()
            in_incident = self.incident_from <= at < self.incident_to and (
                model.provider == self.incident_provider
            )
            if roll < OUTCOME_SHARES or in_incident:
                self._fail(draw, roll, in_incident)
        return draw

    def _fail(self, draw: Draw, roll: float, in_incident: bool) -> None:
        """Turn the draw into an error, a timeout or a cancellation, as ``roll`` falls."""
        rng = self.rng
        if roll < (INCIDENT_ERROR_SHARE if in_incident else ERROR_SHARE):
            errors = PROVIDER_ERRORS.get(draw.model.provider, DEFAULT_ERRORS)
            draw.status = "error"
            draw.error_code, draw.error_message = errors[0] if in_incident else rng.choice(errors)
            draw.input_tokens = draw.output_tokens = draw.cached = draw.reasoning = 0
            draw.latency_ms = int(rng.uniform(80, 1_500))
            draw.ttft_ms = None
        elif roll < ERROR_SHARE + TIMEOUT_SHARE:
            draw.status = "timeout"
            draw.error_code, draw.error_message = "timeout", "No response within 60 s."
            draw.input_tokens = draw.output_tokens = draw.cached = draw.reasoning = 0
            draw.latency_ms = TIMEOUT_MS + int(rng.uniform(0, 400))
            draw.ttft_ms = None
        elif roll < OUTCOME_SHARES:
            draw.status = "cancelled"
            draw.error_code, draw.error_message = "client_cancelled", "Stopped by the user."
            share = rng.uniform(0.05, 0.6)
            draw.output_tokens = max(1, int(draw.output_tokens * share))
            draw.reasoning = min(draw.reasoning, draw.output_tokens)
            draw.latency_ms = (draw.ttft_ms or 0) + int((draw.latency_ms or 0) * share)

    # --- writing -----------------------------------------------------------------------------
    def request(self, person: Person, quota: Quota, at: int) -> bool:
        """A request of the person's client at ``at`` (not in an agent session); False when
        nothing was written (the quota is used up and the person did not retry)."""
        rng = self.rng
        refusal = quota.refusal(at)
        model = pick(rng, person.models, person.cum_weights)
        if refusal is not None:
            if rng.random() >= REJECTED_RETRY_SHARE:
                return False
            code, message = QUOTA_REFUSALS[refusal]
            draw = Draw(model, 0, 0, 0, 0, None, None, "rejected", code, message)
        else:
            bits = rng.getrandbits(24)  # two normal draws (see plan.lognormal)
            input_tokens = int(person.input_tokens * exp(0.8 * NORMAL[bits & 4095]))
            output_tokens = int(input_tokens * exp(-1.05 + 0.6 * NORMAL[bits >> 12])) + 5
            draw = self.draw(model, input_tokens, output_tokens, at=at)
        self.counter += 1
        self.write(person, quota, at, draw, request_id=f"req_{person.tag}{self.counter:08x}")
        return True

    def write(
        self,
        person: Person,
        quota: Quota,
        at: int,
        draw: Draw,
        *,
        request_id: str,
        session_id: int | None = None,
        message_id: int | None = None,
    ) -> int:
        """Add the usage row and its key row (same id, user, request id, agent message and
        time, as record_ai_usage writes them); book it on the quota; return its id."""
        usage_id = self.ids.next()
        model = draw.model
        price_in, price_out, price_cached = model.prices
        fresh, cached, output = draw.input_tokens - draw.cached, draw.cached, draw.output_tokens
        # Micro-dollars, rounded half up as record_ai_usage's round(..., 6).
        cost = (fresh * price_in + cached * price_cached + output * price_out + 500_000) // (
            1_000_000
        )
        total = draw.input_tokens + output
        quota.book(at, total, cost)
        created = ts(at)
        agent = session_id is not None
        if draw.status == "success":
            outcome = self._success_tail(person, agent)
        else:
            outcome = (
                f"{draw.status}\t{draw.error_code}\t{draw.error_message}\t"
                f"{self.metadata(person, agent=agent)}"
            )
        message = NULL if message_id is None else message_id
        self.rows.add(
            f"{usage_id}\t{created}\t{person.id}\t{model.ref_text}\t"
            f"{NULL if session_id is None else session_id}\t{message}\t{request_id}\t"
            # {cost}e-6: bulk.money, inlined (this is the hottest line of the load).
            f"{draw.input_tokens}\t{output}\t{cached}\t{draw.reasoning}\t{total}\t{cost}e-6\t"
            f"{model.price_text}\t{NULL if draw.latency_ms is None else draw.latency_ms}\t"
            f"{NULL if draw.ttft_ms is None else draw.ttft_ms}\t{outcome}"
        )
        self.keys.add(f"{usage_id}\t{person.id}\t{request_id}\t{message}\t{created}")
        return usage_id

    def _success_tail(self, person: Person, agent: bool) -> str:
        key = (*person.client, agent)
        text = self._success.get(key)
        if text is None:
            text = self._success[key] = f"success\t\t\t{self.metadata(person, agent=agent)}"
        return text

    def agent_request_id(self, person: Person) -> str:
        self.counter += 1
        return f"msg_{person.tag}{self.counter:08x}"
