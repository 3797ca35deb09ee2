"""Verifies webhook messages with the independent Python `standardwebhooks` library.

Input: a JSON file with {"secret": "whsec_...", "messages": [{"id", "timestamp", "signature",
"body"}]}. Every message must verify, and every message with a tampered body must not.
Prints "verified N" and exits 0, or says what failed and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    webhook = Webhook(data["secret"])
    for message in data["messages"]:
        headers = {
            "webhook-id": message["id"],
            "webhook-timestamp": str(message["timestamp"]),
            "webhook-signature": message["signature"],
        }
        try:
            webhook.verify(message["body"], headers)
        except WebhookVerificationError as error:
            print(f"message {message['id']} does not verify: {error}")
            return 1
        try:
            webhook.verify(message["body"] + " ", headers)
            print(f"a tampered copy of {message['id']} verified")
            return 1
        except WebhookVerificationError:
            pass
    print(f"verified {len(data['messages'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
