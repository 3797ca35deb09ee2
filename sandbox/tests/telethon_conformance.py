"""Telethon, a second MTProto client written independently of grammers, against the sandbox.

Run by tests/telethon.rs, which prepares the sandbox's world, passes the account's auth key in
the environment, and plays Telegram's side of each step this script announces with a line
"WAIT <step>" (it answers "GO" once done). Every check is an assertion: a failure exits non-zero
with the reason.

Environment: SANDBOX_PORT, SANDBOX_AUTH_KEY (hex), TRANSPORT (full, abridged, intermediate,
obfuscated), CHECKS ("all", or "basic" for connect, get_me and one pushed status).
"""

import asyncio
import os
import sys

from telethon import TelegramClient, events, functions, types
from telethon.crypto import AuthKey
from telethon.network import connection
from telethon.sessions import StringSession

TRANSPORTS = {
    "full": connection.ConnectionTcpFull,
    "abridged": connection.ConnectionTcpAbridged,
    "intermediate": connection.ConnectionTcpIntermediate,
    "obfuscated": connection.ConnectionTcpObfuscated,
}
ACCOUNT, ALICE, BOB = 1000, 2000, 2001
CHANNEL = 1_500_000_001
TIMEOUT = 10


async def step(name):
    print(f"WAIT {name}", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    assert line.strip() == "GO", f"expected GO, got {line!r}"


async def next_event(queue, what):
    try:
        return await asyncio.wait_for(queue.get(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} pushed within {TIMEOUT} s") from None


async def main():
    session = StringSession()
    session.set_dc(2, "127.0.0.1", int(os.environ["SANDBOX_PORT"]))
    session.auth_key = AuthKey(bytes.fromhex(os.environ["SANDBOX_AUTH_KEY"]))
    client = TelegramClient(
        session, 1, "sandbox", connection=TRANSPORTS[os.environ["TRANSPORT"]]
    )
    pushed = asyncio.Queue()

    def into_queue(kind):
        async def handler(event):
            pushed.put_nowait((kind, event))

        return handler

    client.add_event_handler(into_queue("status"), events.UserUpdate)
    client.add_event_handler(into_queue("new"), events.NewMessage)
    client.add_event_handler(into_queue("edit"), events.MessageEdited)
    client.add_event_handler(into_queue("delete"), events.MessageDeleted)

    await client.connect()
    me = await client.get_me()
    assert me.id == ACCOUNT, me

    # A pushed status change (updateShort).
    await step("alice-online")
    kind, event = await next_event(pushed, "status")
    assert (kind, event.user_id, event.online) == ("status", ALICE, True), (kind, event)

    if os.environ.get("CHECKS") == "all":
        await everything_else(client, pushed)
    await client.disconnect()
    print("OK", flush=True)


async def everything_else(client, pushed):
    # Resolving a username, then users.getUsers for a batch with the access hashes learnt.
    alice = await client.get_input_entity("alice")
    bob = await client.get_input_entity("bob")
    users = await client(
        functions.users.GetUsersRequest(
            [
                types.InputUser(alice.user_id, alice.access_hash),
                types.InputUser(bob.user_id, bob.access_hash),
            ]
        )
    )
    assert sorted(u.id for u in users) == [ALICE, BOB], users

    # A channel: history, dialogs, full channel, leave and join again.
    history = await client.get_messages("news", limit=10)
    assert [m.message for m in history] == ["three", "two", "one"], history
    dialogs = await client.get_dialogs()
    assert any(d.entity.id == CHANNEL for d in dialogs), dialogs
    full = await client(functions.channels.GetFullChannelRequest("news"))
    assert full.full_chat.id == CHANNEL, full
    await client(functions.channels.LeaveChannelRequest("news"))
    await step("left")
    await client(functions.channels.JoinChannelRequest("news"))
    await step("joined")

    # Pushed channel posts: new, edited, deleted.
    await step("post-edit-delete")
    kind, event = await next_event(pushed, "new post")
    assert (kind, event.message.message) == ("new", "hello"), (kind, event)
    post_id = event.message.id
    kind, event = await next_event(pushed, "edit")
    assert (kind, event.message.id, event.message.message) == ("edit", post_id, "hello, edited")
    kind, event = await next_event(pushed, "deletion")
    assert (kind, event.deleted_ids) == ("delete", [post_id]), (kind, event)

    # Catch-up: the difference is computed from the state the client gives, and asking twice
    # gives the same answer. Statuses are not part of it.
    state = await client(functions.updates.GetStateRequest())
    await step("away")
    kind, event = await next_event(pushed, "status")
    assert (kind, event.user_id, event.online) == ("status", ALICE, False), (kind, event)
    kind, event = await next_event(pushed, "private message")
    assert (kind, event.message.message) == ("new", "while you were away"), (kind, event)
    asked = [
        await client(
            functions.updates.GetDifferenceRequest(pts=state.pts, date=state.date, qts=state.qts)
        )
        for _ in range(2)
    ]
    for difference in asked:
        assert isinstance(difference, types.updates.Difference), difference
        assert [m.message for m in difference.new_messages] == ["while you were away"]
        assert not any(isinstance(u, types.UpdateUserStatus) for u in difference.other_updates)
        assert difference.state.pts == state.pts + 1
    assert pushed.empty(), pushed.get_nowait()

    # Session housekeeping: a wrong salt and a clock an hour fast are corrected by the server's
    # answers (bad_server_salt, bad_msg_notification 17), and the request still succeeds.
    client._sender._state.salt = 12345
    assert (await client.get_me()).id == ACCOUNT
    client._sender._state.time_offset += 3600
    assert (await client.get_me()).id == ACCOUNT
    salts = await client(functions.GetFutureSaltsRequest(num=3))
    assert len(salts.salts) == 3, salts
    gone = await client(functions.DestroySessionRequest(session_id=12345))
    assert isinstance(gone, types.DestroySessionNone), gone


asyncio.run(main())
