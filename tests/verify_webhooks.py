"""Verifies webhook messages with the reference Python implementation of Standard Webhooks
(`standardwebhooks`, installed by the test in a virtual environment under target/).

Input: a JSON file with {"messages": [{"id", "timestamp", "signature", "body", "secrets"}]}.
Every message must verify with each of its secrets ("whsec_..."; after a rotation the header
carries one signature per secret), and a copy with a tampered body must not verify with any.
Prints "verified N messages, M with two signatures" and exits 0, or says what failed and
exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    rotated = 0
    for message in data["messages"]:
        headers = {
            "webhook-id": message["id"],
            "webhook-timestamp": str(message["timestamp"]),
            "webhook-signature": message["signature"],
        }
        for secret in message["secrets"]:
            webhook = Webhook(secret)
            try:
                webhook.verify(message["body"], headers)
            except WebhookVerificationError as error:
                print(f"message {message['id']} does not verify with a secret: {error}")
                return 1
            try:
                webhook.verify(message["body"] + " ", headers)
                print(f"a tampered copy of {message['id']} verified")
                return 1
            except WebhookVerificationError:
                pass
        if len(message["signature"].split(" ")) == 2:
            rotated += 1
    print(f"verified {len(data['messages'])} messages, {rotated} with two signatures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
