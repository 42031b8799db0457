"""Verify an omnimeter webhook in Python, with the standard library only (run by the tests).

In your handler: verify(secret, request.headers["Omnimeter-Signature"], raw_body_bytes, time.time()).
"""
import hashlib
import hmac
import time


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = 300) -> bool:
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, value in parts if key.strip() == "v1"]
    if not timestamps or not timestamps[0].strip().isdigit():
        return False
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance:
        return False  # too old (or too far ahead): a replay
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


if __name__ == "__main__":
    secret, body, now = "whsec_example", b'{"id":"evt_1","type":"webhook.test"}', int(time.time())
    good = f"t={now},v1=" + hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    print("genuine:", verify(secret, good, body, now))
    print("tampered:", verify(secret, good, body + b" ", now))
    print("replayed:", verify(secret, good, body, now + 3600))
