//! Seed 001 (the channel monitor), from the seed's text: `POST /api/channel` with
//! `{ channel_id: string }` ("Is channel already being monitored? Can one of the accounts join
//! it? If yes, join and start listening"), `GET /api/channels`, `GET /api/logs`, the Accounts'
//! `phone_number`, the Channels' `date_joined`, the Messages' `sender_name` and `media_urls`, and
//! "Alert if: Channel cannot be joined". Over MTProto against the sandbox.

use crate::common;

use std::time::Duration;

use common::{MtprotoApp, add_logged_in_account, spawn_mtproto_app};
use serde_json::{Value, json};
use tgwatch_sandbox::{AccountId, MediaKind, Sandbox};

const WAIT: Duration = Duration::from_secs(30);
const NEWS: i64 = 101;
const CLUB: i64 = 102;

/// A sandbox with `accounts` accounts and two public channels.
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
        .add_channel(NEWS, 1001, Some("daily_news"), "Daily news", "News")
        .unwrap();
    sandbox
        .add_channel(CLUB, 1002, Some("club_feed"), "Club feed", "Club")
        .unwrap();
    (sandbox, accounts)
}

/// The seed's request, as its clients send it.
async fn add_channel(app: &MtprotoApp, channel_id: &str) -> (u16, Value) {
    app.post("/api/channel", &json!({ "channel_id": channel_id }))
        .await
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_channel_added_by_channel_id_is_joined_listed_and_its_posts_carry_the_seed_fields() {
    let (sandbox, accounts) = sandbox(1).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let account = add_logged_in_account(&app, &sandbox, accounts[0], "main", 10).await;

    // Accounts take the seed's `phone_number`.
    let (status, updated) = app
        .patch(
            &format!("/api/accounts/{account}"),
            &json!({ "phone_number": "+15550100" }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["phone"], "+15550100");

    let before = chrono::Utc::now() - chrono::Duration::days(1);
    let (status, channel) = add_channel(&app, "@daily_news").await;
    assert_eq!(status, 201, "{channel}");
    assert_eq!(channel["title"], "Daily news");
    assert_eq!(channel["account_id"], account.as_str());
    let joined = common::timestamp(&channel["date_joined"]);
    assert!(joined > before, "{channel}");
    assert!(sandbox.joined(accounts[0], NEWS));
    // "Is channel already being monitored?": the second request is told so.
    let (status, again) = add_channel(&app, "https://t.me/daily_news").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["details"]["existing"]["id"], channel["id"]);

    // `GET /api/channels` lists it, with `date_joined`.
    let (status, listed) = app.get("/api/channels").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["id"], channel["id"]);
    assert_eq!(listed["items"][0]["date_joined"], channel["date_joined"]);

    // A signed post and a photo: `sender_name` and `media_urls`.
    let signed = sandbox
        .post_signed(NEWS, "signed post", "Jane Editor")
        .unwrap()
        .id;
    let photo = sandbox
        .post_media(NEWS, "a photo", MediaKind::Photo { id: 9001 })
        .unwrap()
        .id;
    let id = channel["id"].as_str().unwrap();
    let messages = app
        .eventually(&format!("/api/channels/{id}/messages"), WAIT, |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| items.len() == 2)
        })
        .await;
    let by_id = |message_id: i32| {
        messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|message| message["message_id"] == message_id)
            .unwrap()
            .clone()
    };
    let signed = by_id(signed);
    assert_eq!(signed["sender_name"], "Jane Editor", "{signed}");
    assert_eq!(signed["media_urls"], json!([]), "{signed}");
    let photo = by_id(photo);
    assert_eq!(photo["sender_name"], Value::Null, "{photo}");
    let urls = photo["media_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1, "{photo}");
    assert_eq!(urls[0], photo["media_ref"], "{photo}");
    assert!(
        urls[0].as_str().unwrap().starts_with("photo:9001:"),
        "{photo}"
    );

    // `GET /api/logs` says what happened.
    let (status, logs) = app.get("/api/logs").await;
    assert_eq!(status, 200, "{logs}");
    assert!(!logs["items"].as_array().unwrap().is_empty(), "{logs}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn when_the_least_loaded_account_cannot_join_the_next_one_does_and_when_none_can_each_reason_is_told_and_alerted()
 {
    let (sandbox, accounts) = sandbox(2).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    // Equal load: the first account created is chosen first.
    let first = add_logged_in_account(&app, &sandbox, accounts[0], "first", 10).await;
    let second = add_logged_in_account(&app, &sandbox, accounts[1], "second", 10).await;

    sandbox
        .inject_account_method_flood_wait(accounts[0], "channels.joinChannel", 1, 1)
        .unwrap();
    let (status, channel) = add_channel(&app, "@daily_news").await;
    assert_eq!(status, 201, "{channel}");
    assert_eq!(channel["account_id"], second.as_str(), "{channel}");
    assert!(sandbox.joined(accounts[1], NEWS) && !sandbox.joined(accounts[0], NEWS));

    // Neither account can join: 409 with the reason of each, a log line and an alert.
    for account in &accounts {
        sandbox
            .inject_account_method_flood_wait(*account, "channels.joinChannel", 1, 1)
            .unwrap();
    }
    let (status, body) = add_channel(&app, "@club_feed").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "join_failed", "{body}");
    let attempts = body["error"]["details"]["attempts"].as_array().unwrap();
    let tried: Vec<&str> = attempts
        .iter()
        .map(|attempt| attempt["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(tried, [first.as_str(), second.as_str()], "{body}");
    for attempt in attempts {
        assert!(
            attempt["reason"].as_str().unwrap().contains("FLOOD_WAIT"),
            "{attempt}"
        );
    }
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`first`") && message.contains("`second`"),
        "{message}"
    );
    let (_, logs) = app.get("/api/logs?level=critical").await;
    let alert = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["context"]["kind"] == "channel_join_failed")
        .unwrap_or_else(|| panic!("no join-failure alert in {logs}"));
    assert!(
        alert["message"].as_str().unwrap().contains("@club_feed"),
        "{alert}"
    );
    assert_eq!(alert["context"]["attempts"].as_array().unwrap().len(), 2);
    assert!(!sandbox.joined(accounts[0], CLUB) && !sandbox.joined(accounts[1], CLUB));
}
