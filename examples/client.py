"""omnimeter from Python with its client (clients/python, standard library only): the README's HTTP example,
run by the tests.

Usage: OMNIMETER_URL=http://127.0.0.1:8080 OMNIMETER_ADMIN_KEY=... python3 examples/client.py
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "clients", "python"))  # or PYTHONPATH=clients/python
from omnimeter import Channel, Client  # noqa: E402

URL = os.environ.get("OMNIMETER_URL", "http://127.0.0.1:8080")

# The operator (admin key) creates a subscription and a key for the customer's backend.
admin = Client(URL, os.environ["OMNIMETER_ADMIN_KEY"])
entity = f"python-demo-{uuid.uuid4().hex[:8]}"
subscription = admin.create_subscription(entity, "organization", "professional")
omnimeter = Client(URL, admin.issue_key(subscription["id"], "python")["key"], retries=3)

# Every chat turn: ask before calling the LLM (the product description's middleware call).
decision = omnimeter.validate_and_consume_tokens(
    entity_id=entity, entity_type="organization", estimated_tokens=350, operation_type="chat",
    channel=Channel.WHATSAPP, chatbot_id="support-bot", session_id="s-1", user_identifier="+15550100",
    message="Where is my order?", idempotency_key="wamid.1")
print("consume", decision.status, decision.allowed, decision["billed_tokens"],
      "RateLimit-Remaining:", decision.headers.get("RateLimit-Remaining"), "request:", decision.request_id)

# ... call the LLM, then settle with what it really used.
settled = omnimeter.settle(decision["usage_id"], 410)
print("settle", settled.status, settled["adjustment"])

# A denial is a value: allowed False, its reason, and the error envelope's member.
denied = omnimeter.consume(entity_id=entity, entity_type="organization", estimated_tokens=10, channel="instagram")
print("denied", denied.status, denied["reason"], denied["required_plan"], denied["error"]["code"])


# Or all at once: consume, call the model only if allowed, settle with its usage (refunded if it raises).
def call_model(decision):
    # e.g. openai.chat.completions.create(...); here its answer's shape, without the network.
    return {"choices": [{"message": {"content": "It ships today."}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 80}}


turn = omnimeter.metered_turn(call_model, entity_id=entity, entity_type="organization", estimated_tokens=350,
                              channel=Channel.WHATSAPP)
if turn.allowed:
    print("metered", turn.actual_tokens, "tokens, billed", turn.settlement["billed_tokens"])
else:
    print("denied", turn.decision["reason"])
