//! Channel monitoring end to end: the service over MTProto (the real grammers client) against
//! the sandbox, driven over HTTP; SQLite, or PostgreSQL with TGWATCH_TEST_DATABASE_URL.

use crate::common;

use std::time::Duration;

use common::{MtprotoApp, add_logged_in_account, spawn_mtproto_app};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tgwatch_sandbox::{AccountId, Ban, Sandbox};
use tgwatch_store::entities::events;

const WAIT: Duration = Duration::from_secs(30);

/// A sandbox with `accounts` accounts and three public channels (one also by invite).
async fn sandbox(accounts: usize) -> (Sandbox, Vec<AccountId>) {
    let sandbox = Sandbox::start().await.unwrap();
    let accounts = (0..accounts)
        .map(|index| {
            sandbox
                .add_account(5000 + index as i64, 50 + index as i64, None, "Watcher")
                .unwrap()
        })
        .collect();
    sandbox
        .add_channel(
            101,
            1001,
            Some("daily_news"),
            "Daily news",
            "News every day",
        )
        .unwrap();
    sandbox.set_channel_subscribers(101, 1234).unwrap();
    sandbox
        .add_channel(102, 1002, None, "Private club", "Members only")
        .unwrap();
    sandbox.add_invite(102, "AbCdEf123").unwrap();
    sandbox
        .add_channel(103, 1003, Some("tech_feed"), "Tech feed", "Gadgets")
        .unwrap();
    (sandbox, accounts)
}

async fn add_channel(app: &MtprotoApp, channel: Value) -> (u16, Value) {
    app.post("/api/channels", &json!({ "channel": channel }))
        .await
}

/// The channel's stored messages (all of them, newest first as the API gives them).
async fn messages(app: &MtprotoApp, channel: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/channels/{channel}/messages?limit=1000"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn wait_for_messages(
    app: &MtprotoApp,
    channel: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = messages(app, channel).await;
        if done(&found) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages never matched: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message_ids(messages: &[Value]) -> Vec<i64> {
    let mut ids: Vec<i64> = messages
        .iter()
        .map(|message| message["message_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn channels_are_added_by_username_and_invite_once_and_within_account_limits() {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let first = add_logged_in_account(&app, &sandbox, accounts[0], "first", 1).await;
    let second = add_logged_in_account(&app, &sandbox, accounts[1], "second", 1).await;

    let (status, news) = add_channel(&app, json!("@daily_news")).await;
    assert_eq!(status, 201, "{news}");
    assert_eq!(news["username"], "daily_news");
    assert_eq!(news["title"], "Daily news");
    assert_eq!(news["about"], "News every day");
    assert!(news["member_count"].as_i64().unwrap() >= 1234);
    assert_eq!(news["status"], "active");
    let news_account = news["account_id"].as_str().unwrap().to_owned();
    assert!([&first, &second].contains(&&news_account));

    // The same channel again, by another spelling: 409 with the existing record.
    let (status, body) = add_channel(&app, json!("https://t.me/daily_news")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["existing"]["id"], news["id"]);

    // By invite link: the other account (each may watch one channel).
    let (status, club) = add_channel(&app, json!("https://t.me/+AbCdEf123")).await;
    assert_eq!(status, 201, "{club}");
    assert_eq!(club["title"], "Private club");
    assert_eq!(club["by_invite"], true);
    assert_ne!(club["account_id"], news["account_id"]);
    assert!(sandbox.joined(accounts[0], 101) || sandbox.joined(accounts[1], 101));

    // Every account is full now.
    let (status, body) = add_channel(&app, json!("@tech_feed")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "no_account_available");

    // Bad input of every kind.
    for bad in [
        json!("not a channel!"),
        json!(true),
        json!(-5),
        json!("@ab"),
    ] {
        let (status, body) = add_channel(&app, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    // Full: no account is chosen, so the name is not even looked up.
    let (status, body) = add_channel(&app, json!("@no_such_channel")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "no_account_available");

    // Filters.
    let (_, listed) = app
        .get(&format!("/api/channels?account_id={news_account}"))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (_, listed) = app.get("/api/channels?username=@daily_news").await;
    assert_eq!(listed["items"][0]["id"], news["id"]);

    // DELETE leaves the channel; the record stays as `left`.
    let id = news["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/channels/{id}")).await, 204);
    let (_, left) = app.get(&format!("/api/channels/{id}")).await;
    assert_eq!(left["status"], "left");
    assert!(!sandbox.joined(accounts[0], 101) && !sandbox.joined(accounts[1], 101));
    // Its room is free again: a name Telegram does not know is refused as such...
    let (status, body) = add_channel(&app, json!("@no_such_channel")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "channel_not_found");
    // ...and a real channel takes the room.
    let (status, body) = add_channel(&app, json!("@tech_feed")).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn new_edited_and_deleted_messages_are_stored_with_their_history() {
    let (sandbox, accounts) = sandbox(1).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;
    let (status, channel) = add_channel(&app, json!("@daily_news")).await;
    assert_eq!(status, 201, "{channel}");
    let id = channel["id"].as_str().unwrap().to_owned();

    let first = sandbox.post(101, "hello world").unwrap().id;
    let second = sandbox.post(101, "second post").unwrap().id;
    wait_for_messages(&app, &id, |found| found.len() == 2).await;

    sandbox.edit(101, first, "hello, world (edited)").unwrap();
    sandbox.delete(101, &[second]).unwrap();
    wait_for_messages(&app, &id, |found| {
        found.iter().any(|m| m["is_deleted"] == true) && found.iter().any(|m| m["version"] == 2)
    })
    .await;

    // A post made while the channel is paused is never seen; its deletion still is recorded.
    let (status, _) = app
        .patch(
            &format!("/api/channels/{id}"),
            &json!({ "is_active": false }),
        )
        .await;
    assert_eq!(status, 200);
    let unseen = sandbox.post(101, "never seen").unwrap().id;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = app
        .patch(
            &format!("/api/channels/{id}"),
            &json!({ "is_active": true, "tags": ["news"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tags"], json!(["news"]));
    sandbox.delete(101, &[unseen]).unwrap();

    let found = wait_for_messages(&app, &id, |found| {
        found.iter().filter(|m| m["is_deleted"] == true).count() == 2
            && found.iter().any(|m| m["version"] == 2)
    })
    .await;
    let never_seen = found.iter().find(|m| m["message_id"] == unseen).unwrap();
    assert_eq!(never_seen["text"], "");
    assert!(found.iter().all(|m| m["text"] != "never seen"));
    let edited = found.iter().find(|m| m["message_id"] == first).unwrap();
    assert_eq!(edited["text"], "hello, world (edited)");
    let (status, detail) = app
        .get(&format!("/api/channels/{id}/messages/{first}"))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["versions"][0]["text"], "hello world");

    let (_, deleted) = app
        .get(&format!("/api/channels/{id}/messages?deleted=true"))
        .await;
    let mut deleted_ids: Vec<i64> = deleted["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_i64().unwrap())
        .collect();
    deleted_ids.sort_unstable();
    assert_eq!(deleted_ids, [i64::from(second), i64::from(unseen)]);
    let (_, found) = app
        .get(&format!("/api/channels/{id}/messages?text=EDITED"))
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    // Every change became exactly one event for webhooks and the live feed (the post made
    // while paused was never seen: its deletion is the only trace).
    let db = sea_orm::Database::connect(&app.config.database.url)
        .await
        .unwrap();
    let mut changes: Vec<(String, i64)> = events::Entity::find()
        .filter(events::Column::ChannelId.eq(uuid::Uuid::parse_str(&id).unwrap()))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| {
            let body: Value = serde_json::from_str(&event.body).unwrap();
            assert_eq!(body["type"], event.event_type.as_str());
            (
                event.event_type,
                body["data"]["message_id"].as_i64().unwrap(),
            )
        })
        .collect();
    changes.sort();
    let (first, second, unseen) = (i64::from(first), i64::from(second), i64::from(unseen));
    let mut expected = vec![
        ("deleted_message".to_owned(), second),
        ("deleted_message".to_owned(), unseen),
        ("edited_message".to_owned(), first),
        ("new_message".to_owned(), first),
        ("new_message".to_owned(), second),
    ];
    expected.sort();
    assert_eq!(changes, expected);
}

/// The watching account is banned in the middle of a stream of posts: its channels move to the
/// other account, which catches up from history, and no post is missing.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_ban_moves_every_channel_and_no_post_is_lost() {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let first = add_logged_in_account(&app, &sandbox, accounts[0], "first", 10).await;
    // Both channels on the first account.
    let mut channel_ids = Vec::new();
    for name in ["@daily_news", "@tech_feed"] {
        let (status, body) = app
            .post(
                "/api/channels",
                &json!({ "channel": name, "account_id": first }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        channel_ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let second = add_logged_in_account(&app, &sandbox, accounts[1], "second", 10).await;

    let mut posted = [Vec::new(), Vec::new()];
    for round in 0..30 {
        for (index, channel) in [101, 103].into_iter().enumerate() {
            posted[index].push(i64::from(
                sandbox.post(channel, &format!("post {round}")).unwrap().id,
            ));
        }
        if round == 10 {
            sandbox.ban(accounts[0], Ban::UserDeactivatedBan).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for (index, id) in channel_ids.iter().enumerate() {
        let found = wait_for_messages(&app, id, |found| found.len() >= posted[index].len()).await;
        assert_eq!(message_ids(&found), posted[index], "channel {id}");
        let (_, channel) = app.get(&format!("/api/channels/{id}")).await;
        assert_eq!(channel["account_id"], second.as_str(), "{channel}");
        assert_eq!(channel["status"], "active");
        let (_, history) = app.get(&format!("/api/channels/{id}/assignments")).await;
        let statuses: Vec<&str> = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["reassigned", "active"]);
    }
    let (_, account) = app.get(&format!("/api/accounts/{first}")).await;
    assert_eq!(account["status"], "banned");
    let (_, logs) = app.get("/api/logs?level=critical").await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["message"].as_str().unwrap().contains("lost")),
        "{logs}"
    );
}

/// With no healthy account left, a channel waits as unassigned, and an account coming back
/// picks it up.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn an_orphaned_channel_waits_and_is_picked_up_when_an_account_returns() {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |config| {
        config.telegram.reconnect_min_seconds = 1;
    })
    .await;
    let first = add_logged_in_account(&app, &sandbox, accounts[0], "first", 10).await;
    let (_, channel) = add_channel(&app, json!("@daily_news")).await;
    let id = channel["id"].as_str().unwrap().to_owned();

    sandbox.ban(accounts[0], Ban::SessionRevoked).unwrap();
    sandbox.post(101, "while nobody watches").unwrap();
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["status"] == "unassigned"
    })
    .await;
    let (_, account) = app.get(&format!("/api/accounts/{first}")).await;
    assert_eq!(account["status"], "banned");

    add_logged_in_account(&app, &sandbox, accounts[1], "second", 10).await;
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["status"] == "active"
    })
    .await;
    wait_for_messages(&app, &id, |found| {
        found.iter().any(|m| m["text"] == "while nobody watches")
    })
    .await;
}

/// Edits and deletions made while the watching account is banned and the channel waits for
/// another account. What comes back when an account picks the channel up is what its history
/// holds after the last stored post: the new posts. The edit of an older post and the deletion
/// of another are in no history, and the account that saw them is gone (grammers also drops
/// edits and deletions from a channel's difference), so they are lost: the stored copies keep
/// the old text and stay undeleted. Later edits and deletions arrive live again.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn edits_and_deletions_made_during_a_ban_are_lost_new_posts_are_recovered() {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |config| {
        config.telegram.reconnect_min_seconds = 1;
    })
    .await;
    add_logged_in_account(&app, &sandbox, accounts[0], "first", 10).await;
    let (_, channel) = add_channel(&app, json!("@daily_news")).await;
    let id = channel["id"].as_str().unwrap().to_owned();
    let edited = sandbox.post(101, "before the ban").unwrap().id;
    let deleted = sandbox.post(101, "deleted during the ban").unwrap().id;
    let kept = sandbox.post(101, "untouched").unwrap().id;
    wait_for_messages(&app, &id, |found| found.len() == 3).await;

    sandbox.ban(accounts[0], Ban::SessionRevoked).unwrap();
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["status"] == "unassigned"
    })
    .await;
    sandbox.edit(101, edited, "edited during the ban").unwrap();
    sandbox.delete(101, &[deleted]).unwrap();
    let new = sandbox.post(101, "posted during the ban").unwrap().id;

    add_logged_in_account(&app, &sandbox, accounts[1], "second", 10).await;
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["status"] == "active"
    })
    .await;
    // Recovered: the post made during the ban.
    let found = wait_for_messages(&app, &id, |found| {
        found.iter().any(|m| m["message_id"] == new)
    })
    .await;
    let by_id = |message_id: i32| {
        found
            .iter()
            .find(|m| m["message_id"] == message_id)
            .unwrap_or_else(|| panic!("message {message_id} missing: {found:?}"))
            .clone()
    };
    assert_eq!(by_id(new)["text"], "posted during the ban");
    assert_eq!(by_id(kept)["text"], "untouched");
    // Lost: the edit and the deletion.
    let before = by_id(edited);
    assert_eq!(before["text"], "before the ban", "{before}");
    assert_eq!(before["version"], 1, "{before}");
    let still_there = by_id(deleted);
    assert_eq!(still_there["is_deleted"], false, "{still_there}");
    assert_eq!(found.len(), 4, "{found:?}");

    // From now on the new account sees edits and deletions live.
    sandbox.edit(101, kept, "edited after the ban").unwrap();
    sandbox.delete(101, &[new]).unwrap();
    wait_for_messages(&app, &id, |found| {
        found
            .iter()
            .any(|m| m["message_id"] == kept && m["text"] == "edited after the ban")
            && found
                .iter()
                .any(|m| m["message_id"] == new && m["is_deleted"] == true)
    })
    .await;
}

/// Connections that keep failing hit the restart intensity limit: the account is parked, an
/// alert is raised, and its channel moves on.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_restart_storm_parks_the_account() {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |config| {
        config.telegram.restart_limit = 2;
        config.telegram.restart_window_seconds = 100_000;
        config.telegram.reconnect_min_seconds = 1;
    })
    .await;
    let first = add_logged_in_account(&app, &sandbox, accounts[0], "first", 10).await;
    let (_, channel) = app
        .post(
            "/api/channels",
            &json!({ "channel": "@daily_news", "account_id": first }),
        )
        .await;
    let id = channel["id"].as_str().unwrap().to_owned();
    let second = add_logged_in_account(&app, &sandbox, accounts[1], "second", 10).await;

    // Every reconnection attempt of the first account now fails.
    sandbox.set_unreachable(accounts[0], true).unwrap();
    let account = app
        .eventually(&format!("/api/accounts/{first}"), WAIT, |account| {
            account["status"] == "inactive"
        })
        .await;
    assert!(
        account["status_reason"]
            .as_str()
            .unwrap()
            .contains("parked"),
        "{account}"
    );
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["account_id"] == second.as_str()
    })
    .await;
    let (_, logs) = app.get("/api/logs?level=critical&source=supervisor").await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["context"]["kind"] == "restart_storm"),
        "{logs}"
    );
}

/// `[[channels]]` is desired state: an edit adds a channel live, removing it from the file
/// leaves it, a broken edit changes nothing, and a channel added through the API is never
/// touched.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn config_edits_add_and_remove_channels_live() {
    let (sandbox, accounts) = sandbox(1).await;
    let (app, path) = common::spawn_mtproto_app_watching(&sandbox, "").await;
    add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;
    let (status, api_channel) = add_channel(&app, json!("@tech_feed")).await;
    assert_eq!(status, 201, "{api_channel}");
    let text = std::fs::read_to_string(&path).unwrap();

    std::fs::write(
        &path,
        format!("{text}\n[[channels]]\nchannel = \"@daily_news\"\ntags = [\"from-file\"]\n"),
    )
    .unwrap();
    let listed = app
        .eventually("/api/channels?tag=from-file", WAIT, |body| {
            body["items"].as_array().unwrap().len() == 1
        })
        .await;
    let from_file = listed["items"][0].clone();
    assert_eq!(from_file["username"], "daily_news");
    assert_eq!(from_file["source"], "config");
    assert!(sandbox.joined(accounts[0], 101));

    // A broken edit: refused, nothing changes, health names the line.
    std::fs::write(&path, format!("{text}\n[[channels]]\nchannel = \n")).unwrap();
    let health = app
        .eventually("/api/health", WAIT, |body| {
            !body["config"]["last_error"].is_null()
        })
        .await;
    assert!(
        health["config"]["last_error"].to_string().contains("line"),
        "{health}"
    );
    let (_, still) = app
        .get(&format!(
            "/api/channels/{}",
            from_file["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(still["status"], "active");

    // Removed from the file: left. The API-made channel stays.
    std::fs::write(&path, &text).unwrap();
    app.eventually(
        &format!("/api/channels/{}", from_file["id"].as_str().unwrap()),
        WAIT,
        |body| body["status"] == "left",
    )
    .await;
    assert!(!sandbox.joined(accounts[0], 101));
    let (_, kept) = app
        .get(&format!(
            "/api/channels/{}",
            api_channel["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(kept["status"], "active");
}

/// A removed channel comes back as the same record (200, same id, messages and assignment
/// history kept) by @username, by numeric id and by `PATCH {"is_active": true}`.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_removed_channel_comes_back_as_the_same_record() {
    let (sandbox, accounts) = sandbox(1).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;
    let (status, news) = add_channel(&app, json!("@daily_news")).await;
    assert_eq!(status, 201, "{news}");
    let id = news["id"].as_str().unwrap().to_owned();
    let path = format!("/api/channels/{id}");
    let first = sandbox.post(101, "before the removal").unwrap().id;
    wait_for_messages(&app, &id, |found| found.len() == 1).await;

    let comebacks: [(&str, Value); 3] = [
        ("by username", json!("@daily_news")),
        ("by numeric id", json!(101)),
        ("by PATCH", Value::Null),
    ];
    for (round, (how, channel)) in comebacks.into_iter().enumerate() {
        assert_eq!(app.delete(&path).await, 204, "{how}");
        let (_, left) = app.get(&path).await;
        assert_eq!(left["status"], "left", "{how}");
        assert!(!sandbox.joined(accounts[0], 101), "{how}");

        let (status, back) = if channel.is_null() {
            // Anything but switching it on is refused while it is left.
            let (status, body) = app.patch(&path, &json!({ "tags": ["x"] })).await;
            assert_eq!(status, 409, "{body}");
            assert_eq!(body["error"]["code"], "channel_left");
            app.patch(&path, &json!({ "is_active": true })).await
        } else {
            add_channel(&app, channel).await
        };
        assert_eq!(status, 200, "{how}: {back}");
        assert_eq!(back["id"], id.as_str(), "{how}");
        assert_eq!(back["status"], "active", "{how}");
        assert_eq!(back["is_active"], true, "{how}");
        assert!(sandbox.joined(accounts[0], 101), "{how}");

        // Messages from before stay; new ones are stored again.
        let posted = sandbox
            .post(101, &format!("after comeback {round}"))
            .unwrap()
            .id;
        let found = wait_for_messages(&app, &id, |found| found.len() == round + 2).await;
        let ids = message_ids(&found);
        assert!(ids.contains(&i64::from(first)), "{how}: {ids:?}");
        assert!(ids.contains(&i64::from(posted)), "{how}: {ids:?}");

        // Every watch is in the history: the ended ones and the new one.
        let (_, assignments) = app.get(&format!("{path}/assignments")).await;
        let assignments = assignments["items"].as_array().unwrap();
        assert_eq!(assignments.len(), round + 2, "{how}: {assignments:?}");
        assert!(
            assignments[..round + 1]
                .iter()
                .all(|a| a["status"] == "left" && !a["ended_at"].is_null()),
            "{how}: {assignments:?}"
        );
        assert_eq!(assignments[round + 1]["status"], "active", "{how}");
    }
    let (_, listed) = app.get("/api/channels").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

/// Taken out of config.toml and put back: the file's channel is joined again as the same record.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_channel_put_back_into_the_config_file_is_the_same_record() {
    let (sandbox, accounts) = sandbox(1).await;
    let (app, path) = common::spawn_mtproto_app_watching(&sandbox, "").await;
    add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let declared = format!("{text}\n[[channels]]\nchannel = \"@daily_news\"\n");
    std::fs::write(&path, &declared).unwrap();
    let listed = app
        .eventually("/api/channels?username=daily_news", WAIT, |body| {
            body["items"][0]["status"] == "active"
        })
        .await;
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();

    std::fs::write(&path, &text).unwrap();
    app.eventually(&format!("/api/channels/{id}"), WAIT, |body| {
        body["status"] == "left"
    })
    .await;
    assert!(!sandbox.joined(accounts[0], 101));

    std::fs::write(&path, &declared).unwrap();
    let back = app
        .eventually(&format!("/api/channels/{id}"), WAIT, |body| {
            body["status"] == "active"
        })
        .await;
    assert_eq!(back["source"], "config");
    assert!(sandbox.joined(accounts[0], 101));
    let (_, listed) = app.get("/api/channels").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let (_, logs) = app.get("/api/logs?level=error").await;
    assert!(
        !logs.to_string().contains("UNIQUE") && !logs.to_string().contains("duplicate key"),
        "{logs}"
    );
}

/// The channels actor panics: it is restarted in place with its buffer and reads its routes
/// back; posts made before, during and after the restart are all stored.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_panicking_channels_actor_restarts_and_no_post_is_lost() {
    let (sandbox, accounts) = sandbox(1).await;
    let app = spawn_mtproto_app(&sandbox, |config| {
        config.testing.fault_injection = true;
        // Posts wait in the actor's buffer when the panic comes.
        config.presence.flush_interval_ms = 1_000;
    })
    .await;
    add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;
    let (status, channel) = add_channel(&app, json!("@daily_news")).await;
    assert_eq!(status, 201, "{channel}");
    let id = channel["id"].as_str().unwrap().to_owned();

    let mut posted = Vec::new();
    for n in 0..5 {
        posted.push(i64::from(
            sandbox.post(101, &format!("before {n}")).unwrap().id,
        ));
    }
    app.panic_and_wait_for_restart("channels", None, Duration::from_secs(1))
        .await;
    for n in 0..5 {
        posted.push(i64::from(
            sandbox.post(101, &format!("after {n}")).unwrap().id,
        ));
    }
    let found = wait_for_messages(&app, &id, |found| found.len() >= posted.len()).await;
    let mut stored = message_ids(&found);
    stored.sort();
    posted.sort();
    assert_eq!(stored, posted);
}
