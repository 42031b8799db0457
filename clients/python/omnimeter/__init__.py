"""omnimeter's HTTP API from Python, with the standard library only (Python 3.9+).

The same calls and semantics as the TypeScript client (``omnimeter/client``):

- a denial is a value (``decision["allowed"] is False`` with its ``reason``), never an exception;
- ``consume`` always sends an ``Idempotency-Key`` (yours, or a fresh UUID), so a retry never charges twice;
- 503 and 429 are retried after their ``Retry-After`` when ``retries`` is set;
- every answer carries the request id (``answer.request_id``), and so does every ``OmnimeterError``.

``metered_turn`` meters one LLM call end to end; ``TokenMiddleware.validate_and_consume_tokens`` mirrors the
product description's middleware (``await token_middleware.validate_and_consume_tokens(...)``).
"""
from __future__ import annotations

import asyncio
import email.message
import enum
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, TypeVar, Union

__all__ = [
    "Answer",
    "Channel",
    "Client",
    "MeteredTurn",
    "OmnimeterError",
    "TokenMiddleware",
    "UnreadableUsageError",
    "tokens_used_by",
]

DENIAL_STATUSES = frozenset({402, 403, 404, 413, 429})
DenialReason = Literal[
    "subscription_not_found",
    "subscription_inactive",
    "channel_not_in_plan",
    "channel_disabled",
    "message_too_long",
    "turn_too_large",
    "rate_limited",
    "quota_exceeded",
]


class Channel(str, enum.Enum):
    """A channel a chat turn arrives on."""

    WEBSITE = "website"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    TELEGRAM = "telegram"
    API = "api"


class Answer(Dict[str, Any]):
    """A JSON answer (a dict, keys as the API spells them) with the id of the request that produced it."""

    def __init__(self, body: Mapping[str, Any], request_id: str, status: int,
                 headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(body)
        self.request_id = request_id
        self.status = status
        #: The response's headers, case-insensitive (RateLimit-Limit, RateLimit-Remaining, Retry-After, ...).
        self.headers: Mapping[str, str] = headers if headers is not None else email.message.Message()

    @property
    def allowed(self) -> bool:
        """For a decision: whether the turn may run."""
        return self.get("allowed") is True


class OmnimeterError(Exception):
    """A non-2xx answer other than a denial, in the error envelope: ``code`` is the API's closed set."""

    def __init__(self, status: int, body: Mapping[str, Any], request_id: str) -> None:
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            error = {"code": "internal_error", "message": f"HTTP {status} without the error envelope"}
        self.status = status
        self.code: str = str(error.get("code"))
        self.message: str = str(error.get("message"))
        self.request_id: str = str(error.get("request_id") or request_id)
        self.field: Optional[str] = error.get("field")
        self.body = body
        super().__init__(f"{status} {self.code}: {self.message}")


class UnreadableUsageError(Exception):
    """``metered_turn`` could not read the tokens used from the result, and no ``usage`` mapping was given."""


def _count(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return round(value)


def _field(usage: Any, name: str) -> Any:
    if isinstance(usage, Mapping):
        return usage.get(name)
    return getattr(usage, name, None)


def _sum(usage: Any, inputs: List[str], output: str) -> Optional[int]:
    first = _count(_field(usage, inputs[0]))
    out = _count(_field(usage, output))
    if first is None or out is None:
        return None
    return first + sum(_count(_field(usage, name)) or 0 for name in inputs[1:]) + out


def _tokens_of_usage(usage: Any) -> Optional[int]:
    if usage is None:
        return None
    for inputs, output in (
        (["prompt_tokens"], "completion_tokens"),  # OpenAI Chat Completions
        (["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"], "output_tokens"),  # Anthropic
        (["inputTokens"], "outputTokens"),
        (["promptTokens"], "completionTokens"),
    ):
        tokens = _sum(usage, inputs, output)
        if tokens is not None:
            return tokens
    return _count(_field(usage, "total_tokens"))


def tokens_used_by(result: Any) -> Optional[int]:
    """The tokens an LLM call's result reports: OpenAI ``usage.prompt_tokens`` + ``completion_tokens``,
    Anthropic ``usage.input_tokens`` + ``output_tokens`` (and its cache tokens), as dicts or SDK objects."""
    for candidate in (_field(result, "usage"), result):
        tokens = _tokens_of_usage(candidate)
        if tokens is not None:
            return tokens
    return None


R = TypeVar("R")


class MeteredTurn:
    """A turn that ran and was settled (``allowed``), or one that was denied (``run`` never ran)."""

    def __init__(self, decision: Answer, result: Any = None, actual_tokens: Optional[int] = None,
                 settlement: Optional[Answer] = None) -> None:
        self.allowed = decision.allowed
        self.decision = decision
        self.result = result
        self.actual_tokens = actual_tokens
        self.settlement = settlement


class Client:
    """A synchronous client. ``api_key`` is the admin key or a subscription's key."""

    def __init__(self, base_url: str, api_key: str, *, retries: int = 0, max_delay: float = 30.0,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retries = max(0, int(retries))
        self.max_delay = max_delay
        self.timeout = timeout

    # -- transport ---------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Optional[bytes], headers: Mapping[str, str]) -> tuple:
        attempt = 0
        while True:
            request = urllib.request.Request(self.base_url + path, data=body, method=method, headers={
                "Authorization": f"Bearer {self.api_key}", "Accept": "application/json", **headers})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status, raw, response_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, raw, response_headers = error.code, error.read(), error.headers
            retry_after = response_headers.get("Retry-After")
            if status in (429, 503) and attempt < self.retries and retry_after and retry_after.isdigit():
                attempt += 1
                time.sleep(min(int(retry_after), self.max_delay))
                continue
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return status, parsed, response_headers.get("X-Request-Id", ""), response_headers

    def _call(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None,
              query: Optional[Mapping[str, Any]] = None) -> Answer:
        if query:
            pairs = {k: v for k, v in query.items() if v is not None}
            if pairs:
                path += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode()
        status, parsed, request_id, response_headers = self._send(
            method, path, data, {"Content-Type": "application/json", **(headers or {})})
        if status >= 400:
            raise OmnimeterError(status, parsed or {}, request_id)
        return Answer(parsed or {}, request_id, status, response_headers)

    # -- metering ----------------------------------------------------------------------------------------

    def consume(self, *, entity_id: str, entity_type: str, estimated_tokens: int,
                channel: Union[Channel, str], operation_type: Optional[str] = None,
                chatbot_id: Optional[str] = None, session_id: Optional[str] = None,
                user_identifier: Optional[str] = None, message: Optional[str] = None,
                message_length: Optional[int] = None, idempotency_key: Optional[str] = None) -> Answer:
        """Decides whether a chat turn may run, and charges it. A denial is returned (``allowed`` False,
        with ``reason``), not raised; other errors raise :class:`OmnimeterError`."""
        body = {
            "entity_id": entity_id, "entity_type": entity_type, "estimated_tokens": estimated_tokens,
            "channel": Channel(channel).value, "operation_type": operation_type, "chatbot_id": chatbot_id,
            "session_id": session_id, "user_identifier": user_identifier, "message": message,
            "message_length": message_length,
        }
        body = {k: v for k, v in body.items() if v is not None}
        key = idempotency_key or str(uuid.uuid4())
        status, parsed, request_id, response_headers = self._send(
            "POST", "/api/tokens/consume", json.dumps(body).encode(),
            {"Content-Type": "application/json", "Idempotency-Key": key})
        if status == 200 or (status in DENIAL_STATUSES and isinstance(parsed, dict) and "allowed" in parsed):
            return Answer(parsed, request_id, status, response_headers)
        raise OmnimeterError(status, parsed or {}, request_id)

    def validate_and_consume_tokens(self, entity_id: str, entity_type: str, estimated_tokens: int,
                                    operation_type: Optional[str] = None,
                                    channel: Union[Channel, str] = Channel.API, chatbot_id: Optional[str] = None,
                                    session_id: Optional[str] = None, user_identifier: Optional[str] = None,
                                    **extra: Any) -> Answer:
        """The product description's middleware call, with its argument names; see :meth:`consume`."""
        return self.consume(entity_id=entity_id, entity_type=entity_type, estimated_tokens=estimated_tokens,
                            operation_type=operation_type, channel=channel, chatbot_id=chatbot_id,
                            session_id=session_id, user_identifier=user_identifier, **extra)

    def settle(self, usage_id: str, actual_tokens: int, *, outcome: Optional[Literal["ok", "error"]] = None,
               latency_ms: Optional[int] = None) -> Answer:
        """Replaces a turn's estimate with the tokens it really used; the difference is refunded or charged."""
        body: Dict[str, Any] = {"usage_id": usage_id, "actual_tokens": actual_tokens}
        if outcome is not None:
            body["outcome"] = outcome
        if latency_ms is not None:
            body["latency_ms"] = latency_ms
        return self._call("POST", "/api/tokens/settle", body)

    def metered_turn(self, run: Callable[[Answer], R], *, usage: Optional[Callable[[R], Optional[int]]] = None,
                     **consume: Any) -> MeteredTurn:
        """Meters one LLM call end to end: consume (``consume``'s keyword arguments); call ``run(decision)``
        only when allowed; settle with the usage its result reports (OpenAI, Anthropic) or ``usage(result)``.
        When ``run`` raises, the turn is settled as an error with 0 tokens (its estimate refunded) and the
        exception propagates."""
        decision = self.consume(**consume)
        if not decision.allowed:
            return MeteredTurn(decision)
        started = time.monotonic()
        try:
            result = run(decision)
        except BaseException:
            latency = round((time.monotonic() - started) * 1000)
            try:
                self.settle(decision["usage_id"], 0, outcome="error", latency_ms=latency)
            except Exception:  # a failed refund must not hide the error that caused it
                pass
            raise
        latency = round((time.monotonic() - started) * 1000)
        tokens = usage(result) if usage else tokens_used_by(result)
        if tokens is None or tokens < 0:
            raise UnreadableUsageError(
                "metered_turn could not read token usage from the result; pass usage=lambda result: tokens. "
                "The turn stays charged at its estimate.")
        settlement = self.settle(decision["usage_id"], round(tokens), outcome="ok", latency_ms=latency)
        return MeteredTurn(decision, result, round(tokens), settlement)

    # -- administration and analytics --------------------------------------------------------------------

    def create_subscription(self, entity_id: str, entity_type: str, plan: str, **fields: Any) -> Answer:
        """Admin: creates a subscription (``token_limit``, ``timezone``, ... as keyword arguments)."""
        return self._call("POST", "/api/subscriptions",
                          {"entity_id": entity_id, "entity_type": entity_type, "plan": plan, **fields})

    def issue_key(self, subscription_id: str, label: Optional[str] = None) -> Answer:
        """Admin: issues a key for a subscription; ``answer["key"]`` is shown this once."""
        return self._call("POST", f"/api/subscriptions/{urllib.parse.quote(subscription_id)}/keys",
                          {} if label is None else {"label": label})

    def analytics(self, subscription_id: str, **query: Any) -> Answer:
        """A subscription's channel analytics (``from_``/``to``/``tz``/``channels`` as the API's query)."""
        if "from_" in query:
            query["from"] = query.pop("from_")
        return self._call("GET", f"/api/onboarding/analytics/{urllib.parse.quote(subscription_id)}", query=query)

    def import_usage(self, lines: Iterable[Mapping[str, Any]]) -> Answer:
        """Admin: imports historical turns (one JSON object per line, sent as NDJSON)."""
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        status, parsed, request_id, response_headers = self._send(
            "POST", "/api/usage/import", body, {"Content-Type": "application/x-ndjson"})
        if status >= 400:
            raise OmnimeterError(status, parsed or {}, request_id)
        return Answer(parsed or {}, request_id, status, response_headers)


class TokenMiddleware:
    """The product description's middleware, awaitable: each call runs the synchronous client in a thread.

    ``await TokenMiddleware(client).validate_and_consume_tokens(entity_id=..., channel=Channel.WHATSAPP, ...)``
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    async def validate_and_consume_tokens(self, **arguments: Any) -> Answer:
        return await asyncio.to_thread(self.client.validate_and_consume_tokens, **arguments)

    async def settle(self, usage_id: str, actual_tokens: int, **arguments: Any) -> Answer:
        return await asyncio.to_thread(self.client.settle, usage_id, actual_tokens, **arguments)
