"""omnimeter from Python, with the standard library only: the README's HTTP example, run by the tests.

Usage: OMNIMETER_URL=http://127.0.0.1:8080 OMNIMETER_ADMIN_KEY=... python3 examples/client.py
"""
import json
import os
import urllib.error
import urllib.request
import uuid

URL = os.environ.get("OMNIMETER_URL", "http://127.0.0.1:8080")
ADMIN_KEY = os.environ["OMNIMETER_ADMIN_KEY"]


def call(method, path, key, body=None, headers=None):
    request = urllib.request.Request(
        URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:  # denials and errors carry JSON bodies too
        return error.code, json.loads(error.read()), error.headers


# The operator (admin key) creates a subscription and a key for the customer's backend.
entity = f"python-demo-{uuid.uuid4().hex[:8]}"
status, subscription, _ = call("POST", "/api/subscriptions", ADMIN_KEY,
                               {"entity_id": entity, "entity_type": "organization", "plan": "professional"})
assert status == 201, subscription
status, issued, _ = call("POST", f"/api/subscriptions/{subscription['id']}/keys", ADMIN_KEY, {"label": "python"})
key = issued["key"]

# Every chat turn: ask before calling the LLM.
status, decision, headers = call("POST", "/api/tokens/consume", key, {
    "entity_id": entity, "entity_type": "organization", "estimated_tokens": 350, "operation_type": "chat",
    "channel": "whatsapp", "chatbot_id": "support-bot", "session_id": "s-1", "user_identifier": "+15550100",
    "message": "Where is my order?",
}, headers={"Idempotency-Key": "wamid.1"})
print("consume", status, decision["allowed"], decision["billed_tokens"], "RateLimit-Remaining:", headers.get("RateLimit-Remaining"))

# ... call the LLM, then settle with what it really used.
status, settled, _ = call("POST", "/api/tokens/settle", key, {"usage_id": decision["usage_id"], "actual_tokens": 410})
print("settle", status, settled["adjustment"])

# A denial is an HTTP status with the decision and the error envelope in the body.
status, denied, _ = call("POST", "/api/tokens/consume", key, {
    "entity_id": entity, "entity_type": "organization", "estimated_tokens": 10, "channel": "instagram"})
print("denied", status, denied["reason"], denied["required_plan"], denied["error"]["code"])
