"""factory_boy factories for tests, benchmarks and demo data."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.db import connection

from accounts.models import AuditLog, User
from agents.models import AgentMessage, AgentSession
from billing.models import SubscriptionTier, UserQuota
from usage.models import AIModel, AIUsageRequest, AIUsageRequestKey


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct horse battery")


class AgentSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentSession

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Session {n}")


class AgentMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentMessage

    session = factory.SubFactory(AgentSessionFactory)
    user = factory.SelfAttribute("session.user")
    role = "user"
    content = "Hello"
    position = factory.Sequence(lambda n: n + 1)


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    user = factory.SubFactory(UserFactory)
    event_type = "login_succeeded"


def catalog_model(name: str = "gpt-5-mini") -> AIModel:
    return AIModel.objects.select_related("provider").get(name=name)


def quota_for(user: User, tier_slug: str = "free", *, now: datetime | None = None) -> UserQuota:
    """The user's quota for the current UTC month, with the tier's limits."""
    tier = SubscriptionTier.objects.get(slug=tier_slug)
    now = now or datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return UserQuota.objects.create(
        user=user,
        tokens_limit=tier.monthly_token_limit,
        cost_limit=tier.monthly_cost_limit,
        period_start=start,
        period_end=end,
    )


def usage_request(
    *,
    user: User,
    model: AIModel,
    created_at: datetime | None = None,
    request_id: str | None = None,
    input_tokens: int = 1000,
    output_tokens: int = 500,
    **fields,
) -> AIUsageRequest:
    """Insert one usage row the way the database requires: its key row first."""
    created_at = created_at or datetime.now(UTC)
    request_id = request_id or uuid.uuid4().hex
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('ai_usage_requests_id_seq')")
        usage_id = cursor.fetchone()[0]
    AIUsageRequestKey.objects.create(
        usage_id=usage_id,
        user=user,
        request_id=request_id,
        created_at=created_at,
        agent_message=fields.get("agent_message"),
    )
    cost = (
        input_tokens * model.input_price_per_million
        + output_tokens * model.output_price_per_million
    ) / Decimal(1_000_000)
    return AIUsageRequest.objects.create(
        id=usage_id,
        created_at=created_at,
        user=user,
        provider_id=model.provider_id,
        model=model,
        request_id=request_id,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cost=cost.quantize(Decimal("0.000001")),
        input_price_per_million=model.input_price_per_million,
        output_price_per_million=model.output_price_per_million,
        cached_input_price_per_million=model.cached_input_price_per_million,
        **fields,
    )


def api_member(*, tier: str | None = "free", email: str | None = None) -> User:
    """A verified user with a quota of ``tier`` (None: no quota) and a bearer token, kept
    on the returned user as ``.token`` (the raw value, as the client app holds it)."""
    from django.db import transaction
    from django.utils import timezone

    from accounts import tokens
    from witchcraft.platform import rls

    user = UserFactory(email_verified_at=timezone.now(), **({"email": email} if email else {}))
    if tier:
        quota_for(user, tier)
    with transaction.atomic(), rls.user_context(user):
        user.token = tokens.token_issue(user_id=user.pk, name="tests").raw
    return user


def service_credential(*, scopes=None, staff: User | None = None, name: str = "AI backend"):
    """A service credential issued by ``staff`` (default: a new staff member), holding
    ``scopes`` (default: every service scope). The raw value is ``.raw``: send it as
    ``Authorization: Bearer <raw>`` with ``Witchcraft-User: <user id>``; ``.credential`` is
    the row."""
    from django.db import transaction

    from accounts import service_credentials
    from witchcraft.platform import rls

    staff = staff or UserFactory(is_staff=True, password=None)
    with transaction.atomic(), rls.service_context(actor=staff):
        return service_credentials.service_credential_issue(name=name, scopes=scopes)
