"""``docs/wallet-api.yaml`` as a test oracle (openapi-core).

The bot's HTTP requests and the answers it parses are checked against the document
(:class:`SpecCheckingTransport` wraps the http client's transport), and the fake wallet in
:mod:`tests.backend.fake_server` routes by the document's operations and checks its own
requests and answers with it, so code, fake and document cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.finders import APICallPathFinder
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).parents[2] / "docs" / "wallet-api.yaml"
#: The spec's server; requests are checked as if sent there, whatever port the fake uses.
HOST, ROOT = "https://wallet.example", "/api/v1"
#: A fake's answer that breaks the document on purpose (a test of garbled answers).
GARBLED_HEADER = "X-Fake-Fault"


@cache
def spec() -> OpenAPI:
    """Return the parsed, validated OpenAPI document."""
    return OpenAPI.from_file_path(str(SPEC_PATH))


@dataclass
class SpecRequest:
    """A request in the shape openapi-core reads (see ``openapi_core.protocols.Request``)."""

    method: str
    api_path: str  # below the API root, e.g. "/accounts/U1001"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(self.query), header=Headers(self.headers), cookie={}
        )

    @property
    def host_url(self) -> str:
        return HOST

    @property
    def path(self) -> str:
        return ROOT + self.api_path


@dataclass
class SpecResponse:
    """A response in the shape openapi-core reads."""

    status_code: int
    data: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def operation(method: str, api_path: str) -> tuple[str, dict[str, str]] | None:
    """Return the operationId and path variables of a request, or None if undocumented."""
    finder = APICallPathFinder(spec().spec, base_url=None)
    try:
        found = finder.find(method.lower(), HOST + ROOT + api_path)
    except Exception:  # openapi-core's PathNotFound / OperationNotFound
        return None
    return found.operation["operationId"], dict(found.path_result.variables)


def request_errors(request: SpecRequest) -> list[str]:
    """Return what is wrong with a request according to the document (empty: nothing)."""
    result = spec().unmarshal_request(request)
    return [_describe(error) for error in result.errors]


def response_errors(request: SpecRequest, response: SpecResponse) -> list[str]:
    """Return what is wrong with a response to ``request`` according to the document."""
    result = spec().unmarshal_response(request, response)
    return [_describe(error) for error in result.errors]


def _describe(error: BaseException) -> str:
    causes = [error, *getattr(error, "schema_errors", ())]
    cause = error.__cause__
    while cause is not None:
        causes.append(cause)
        causes.extend(getattr(cause, "schema_errors", ()))
        cause = cause.__cause__
    return "; ".join(str(getattr(c, "message", c)) for c in causes)


def from_httpx(request: httpx.Request, api_root: str) -> SpecRequest:
    """Return the spec view of a request the http client sends to ``api_root``."""
    path = request.url.path
    root = httpx.URL(api_root).path.rstrip("/")
    api_path = path[len(root) :] if path.startswith(root) else path
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    body = request.content or None
    return SpecRequest(
        request.method,
        api_path,
        query,
        dict(request.headers),
        body,
        request.headers.get("Content-Type", "application/json") if body else "application/json",
    )


class SpecCheckingTransport(httpx.AsyncBaseTransport):
    """Pass requests on, checking each request and each answer against the document.

    What does not match is recorded in :attr:`violations` (a test asserts it stays empty);
    answers a fake marks as garbled on purpose are not checked.
    """

    def __init__(self, api_root: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.api_root = api_root
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.violations: list[str] = []
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        seen = from_httpx(request, self.api_root)
        label = f"{request.method} {seen.api_path}"
        if operation(request.method, seen.api_path) is None:
            self.violations.append(f"{label}: not in docs/wallet-api.yaml")
        else:
            self.violations.extend(f"{label}: {e}" for e in request_errors(seen))
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if GARBLED_HEADER not in response.headers and operation(request.method, seen.api_path):
            answer = SpecResponse(
                response.status_code,
                content or None,
                dict(response.headers),
                response.headers.get("Content-Type", "application/json").split(";")[0],
            )
            errors = response_errors(seen, answer)
            self.violations.extend(f"{label} -> {response.status_code}: {e}" for e in errors)
        self.checked += 1
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def checked_client(api_root: str, timeout: float = 5.0) -> tuple[httpx.AsyncClient, Any]:
    """Return an httpx client for the bot's wallet client whose traffic is checked, and the
    transport (for its ``violations``)."""
    transport = SpecCheckingTransport(api_root)
    client = httpx.AsyncClient(transport=transport, timeout=timeout)
    return client, transport


def error_body(reason: str, **details: Any) -> bytes:
    """Return a documented error body."""
    return json.dumps({"error": {"reason": reason, "message": reason, "details": details}}).encode()
