"""Every operation of the API is public or declares exactly one scope of the vocabulary, and
the OpenAPI document says which (the ``bearerAuth`` scheme, ``x-required-scope``)."""

import pytest

from accounts import scopes
from accounts.bearer import ScopedBearer
from witchcraft.api import SECURITY_SCHEME, api

# Operations any valid access token may call on itself, with no scope.
OWN_TOKEN_OPERATIONS = {("post", "/api/v1/auth/logout")}


def _operations():
    document = api.get_openapi_schema(path_prefix="/api/v1/")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _violations(ninja_api, prefix: str = "/api/v1/") -> list[str]:
    """Each operation of ``ninja_api``, as it will run, that is neither public nor declares
    exactly one scope of the vocabulary (nor is a known own-token operation)."""
    wrong = []
    for router in ninja_api._get_bound_routers():
        for route, path_view in router.path_operations.items():
            path = prefix + "/".join(p.strip("/") for p in (router.prefix, route) if p.strip("/"))
            for operation in path_view.operations:
                callbacks = operation.auth_callbacks
                if not callbacks:
                    continue  # auth=None: public
                declared = [c.scope for c in callbacks if isinstance(c, ScopedBearer) and c.scope]
                for method in operation.methods:
                    if (method.lower(), path) in OWN_TOKEN_OPERATIONS and all(
                        isinstance(c, ScopedBearer) and c.own_token for c in callbacks
                    ):
                        continue
                    if len(callbacks) != 1 or len(declared) != 1 or declared[0] not in scopes.ALL:
                        wrong.append(f"{method} {path}: declares {declared or 'no scope'}")
    return sorted(wrong)


def test_every_operation_is_public_or_declares_exactly_one_scope():
    wrong = _violations(api)
    assert not wrong, "operations without exactly one scope:\n" + "\n".join(wrong)


def test_the_walk_finds_an_operation_that_forgot_its_scope():
    from accounts.tests.probe_api import probe

    assert _violations(probe, "/api/probe/") == ["GET /api/probe/undeclared: declares no scope"]


def test_the_document_shows_each_operations_scope():
    document = api.get_openapi_schema(path_prefix="/api/v1/")
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert all(f"`{scope}`" in scheme["description"] for scope in scopes.ALL)
    operations = {(method, path): op for method, path, op in _operations()}
    me = operations[("get", "/api/v1/me")]
    assert me["security"] == [{SECURITY_SCHEME: [scopes.ACCOUNT]}]
    assert me["x-required-scope"] == scopes.ACCOUNT
    assert "Requires the scope `account`." in me["description"]
    assert operations[("post", "/api/v1/tokens")]["x-required-scope"] == scopes.TOKENS_MANAGE
    assert operations[("post", "/api/v1/auth/logout")]["security"] == [{SECURITY_SCHEME: []}]
    assert "security" not in operations[("post", "/api/v1/auth/login")]
    for *_, operation in _operations():
        if "x-required-scope" in operation:
            assert operation["security"] == [{SECURITY_SCHEME: [operation["x-required-scope"]]}]


@pytest.mark.django_db
def test_the_served_document_has_the_scopes(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["paths"]["/api/v1/me"]["get"]["x-required-scope"] == "account"
    assert SECURITY_SCHEME in document["components"]["securitySchemes"]
