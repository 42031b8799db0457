"""The Python client against a real omnimeter server (started by test/client/python-client.db.test.ts).

Run by hand: OMNIMETER_URL=http://127.0.0.1:8080 OMNIMETER_ADMIN_KEY=... python3 -m unittest -v test_omnimeter
"""
import asyncio
import http.server
import json
import os
import threading
import unittest
import uuid

from omnimeter import Channel, Client, OmnimeterError, TokenMiddleware, UnreadableUsageError, tokens_used_by

URL = os.environ.get("OMNIMETER_URL", "")
ADMIN_KEY = os.environ.get("OMNIMETER_ADMIN_KEY", "")


class FakeModelError(Exception):
    pass


@unittest.skipUnless(URL and ADMIN_KEY, "OMNIMETER_URL and OMNIMETER_ADMIN_KEY name a running server")
class AgainstARealServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin = Client(URL, ADMIN_KEY)
        cls.entity = f"py-{uuid.uuid4().hex[:10]}"
        cls.subscription = cls.admin.create_subscription(cls.entity, "organization", "professional",
                                                         token_limit=100_000)
        cls.key = cls.admin.issue_key(cls.subscription["id"], "python tests")["key"]
        cls.client = Client(URL, cls.key)

    def turn(self, **overrides):
        return {"entity_id": self.entity, "entity_type": "organization", "estimated_tokens": 300,
                "channel": Channel.WHATSAPP, **overrides}

    def remaining(self):
        return self.admin._call("GET", f"/api/subscriptions/{self.subscription['id']}")["quota"]["remaining_tokens"]

    def test_an_allowed_turn_is_charged_and_settled_with_its_request_ids(self):
        decision = self.client.consume(**self.turn(operation_type="chat", chatbot_id="bot", session_id="s1",
                                                   user_identifier="+1555", message="Where is my order?"))
        self.assertTrue(decision.allowed)
        self.assertEqual(decision["billed_tokens"], 360)  # whatsapp's 1.2x multiplier
        self.assertRegex(decision.request_id, r"^[\w.:-]+$")
        settled = self.client.settle(decision["usage_id"], 250, outcome="ok", latency_ms=900)
        self.assertEqual(settled["adjustment"], 300 - 360)
        self.assertTrue(settled.request_id)

    def test_a_denial_is_a_value_with_its_reason(self):
        denied = self.client.consume(**self.turn(channel="instagram"))
        self.assertFalse(denied.allowed)
        self.assertEqual(denied.status, 403)
        self.assertEqual(denied["reason"], "channel_not_in_plan")
        self.assertEqual(denied["required_plan"], "enterprise")
        self.assertEqual(denied["error"]["request_id"], denied.request_id)

    def test_a_repeated_idempotency_key_charges_once(self):
        first = self.client.consume(**self.turn(idempotency_key="wamid.py-1"))
        before = self.remaining()
        again = self.client.consume(**self.turn(idempotency_key="wamid.py-1"))
        self.assertTrue(again["replayed"])
        self.assertEqual(again["usage_id"], first["usage_id"])
        self.assertEqual(self.remaining(), before)

    def test_errors_raise_the_envelope_with_code_field_and_request_id(self):
        with self.assertRaises(OmnimeterError) as caught:
            self.client.settle(str(uuid.uuid4()), 10)
        self.assertEqual((caught.exception.status, caught.exception.code), (404, "usage_not_found"))
        self.assertTrue(caught.exception.request_id)
        with self.assertRaises(OmnimeterError) as bad:
            self.client.consume(**self.turn(estimated_tokens=-1))
        self.assertEqual((bad.exception.code, bad.exception.field), ("validation_error", "estimated_tokens"))
        with self.assertRaises(OmnimeterError) as forbidden:
            self.client.create_subscription("x", "organization", "basic")
        self.assertEqual(forbidden.exception.code, "forbidden")

    def test_metered_turn_settles_with_openai_usage(self):
        before = self.remaining()
        completion = {"choices": [{"message": {"content": "Hi"}}], "usage": {"prompt_tokens": 120,
                                                                             "completion_tokens": 80}}
        turn = self.client.metered_turn(lambda decision: completion, **self.turn())
        self.assertTrue(turn.allowed)
        self.assertEqual(turn.actual_tokens, 200)
        self.assertEqual(turn.settlement["billed_tokens"], 240)
        self.assertEqual(before - self.remaining(), 240)

    def test_metered_turn_reads_anthropic_usage_objects(self):
        class Usage:
            input_tokens, output_tokens = 50, 25

        class Message:
            usage = Usage()

        turn = self.client.metered_turn(lambda decision: Message(), **self.turn(channel="website"))
        self.assertEqual(turn.actual_tokens, 75)

    def test_metered_turn_refunds_and_reraises_when_the_model_fails(self):
        before = self.remaining()

        def failing(decision):
            raise FakeModelError("upstream 500")

        with self.assertRaises(FakeModelError):
            self.client.metered_turn(failing, **self.turn())
        self.assertEqual(self.remaining(), before)

    def test_metered_turn_does_not_run_a_denied_turn(self):
        ran = []
        turn = self.client.metered_turn(lambda decision: ran.append(1), **self.turn(channel="instagram"))
        self.assertFalse(turn.allowed)
        self.assertEqual(turn.decision["reason"], "channel_not_in_plan")
        self.assertEqual(ran, [])

    def test_metered_turn_needs_a_mapping_for_an_unknown_result(self):
        with self.assertRaises(UnreadableUsageError):
            self.client.metered_turn(lambda decision: "text", **self.turn())
        turn = self.client.metered_turn(lambda decision: "text", usage=lambda result: 42, **self.turn())
        self.assertEqual(turn.actual_tokens, 42)

    def test_the_product_descriptions_middleware_call(self):
        middleware = TokenMiddleware(self.client)
        decision = asyncio.run(middleware.validate_and_consume_tokens(
            entity_id=self.entity, entity_type="organization", estimated_tokens=100, operation_type="chat",
            channel=Channel.WHATSAPP, chatbot_id="bot", session_id="s2", user_identifier="u-1"))
        self.assertTrue(decision.allowed)

    def test_imports_and_analytics(self):
        report = self.admin.import_usage([
            {"subscription_id": self.subscription["id"], "channel": "telegram",
             "created_at": "2026-01-05T10:00:00Z", "raw_tokens": 500, "user_identifier": "u-9"},
            {"subscription_id": self.subscription["id"], "channel": "nope", "created_at": "2026-01-05T10:00:00Z",
             "raw_tokens": 5},
        ])
        self.assertEqual((report["imported"], report["rejected_count"]), (1, 1))
        analytics = self.client.analytics(self.subscription["id"], from_="2026-01-01", to="2026-01-31", tz="UTC")
        telegram = [c for c in analytics["channels"] if c["channel"] == "telegram"][0]
        self.assertEqual(telegram["message_count"], 1)
        self.assertEqual(telegram["unique_users"], 1)


class RetryAfter(unittest.TestCase):
    """Retries follow Retry-After (a local stand-in answers 503 twice, then the decision)."""

    def test_503_is_retried_after_retry_after_with_the_same_idempotency_key(self):
        seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(self.headers["Idempotency-Key"])
                if len(seen) <= 2:
                    body, status, extra = b'{"error":{"code":"service_unavailable","message":"x","request_id":"r"}}', 503, {"Retry-After": "0"}
                else:
                    body, status, extra = json.dumps({"allowed": True, "usage_id": "u"}).encode(), 200, {}
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "X-Request-Id": f"req-{len(seen)}", **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            turn = {"entity_id": "e", "entity_type": "organization", "estimated_tokens": 1, "channel": "api"}
            with self.assertRaises(OmnimeterError) as caught:
                Client(url, "k").consume(**turn)
            self.assertEqual(caught.exception.code, "service_unavailable")
            seen.clear()
            decision = Client(url, "k", retries=3).consume(**turn)
            self.assertTrue(decision.allowed)
            self.assertEqual(decision.request_id, "req-3")
            self.assertEqual(len(set(seen)), 1)
            self.assertEqual(len(seen), 3)
        finally:
            server.shutdown()
            server.server_close()


class UsageShapes(unittest.TestCase):
    def test_reads_openai_anthropic_and_plain_usage(self):
        self.assertEqual(tokens_used_by({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}), 7)
        self.assertEqual(tokens_used_by({"usage": {"input_tokens": 3, "output_tokens": 4,
                                                   "cache_read_input_tokens": 10}}), 17)
        self.assertEqual(tokens_used_by({"total_tokens": 9}), 9)
        self.assertIsNone(tokens_used_by({"usage": {"prompt_tokens": "3"}}))


if __name__ == "__main__":
    unittest.main()
