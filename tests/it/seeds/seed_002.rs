//! Seed 002 (SeeOnline REST), from the seed's text: the five resources at their URLs with the
//! trailing slash the seed writes, GET list / GET one / POST / PUT / PATCH / DELETE, the listed
//! filters, the models' field names, lists as plain JSON arrays. Against the scripted Telegram.

use crate::common;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{TOKEN, TestApp, spawn_app};
use serde_json::{Value, json};

const PEOPLE: &str = r#"
[[users]]
id = 1001
username = "ivan_online"
first_name = "Ivan"
online = [[0, 600]]

[[users]]
id = 1002
username = "maria_quiet"
first_name = "Maria"
hidden = true

[[users]]
id = 1003
username = "petr_other"
first_name = "Petr"
hidden = true
"#;

fn items(body: &Value) -> &Vec<Value> {
    body.as_array()
        .unwrap_or_else(|| panic!("a seed-002 list is a JSON array: {body}"))
}

fn ids(body: &Value) -> Vec<&str> {
    items(body)
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn tracker_accounts_and_their_settings() {
    let app = spawn_app(PEOPLE, |_| {}).await;
    // Without the admin token: refused, as `/api` is.
    let anonymous = app
        .client
        .get(format!("{}/tracker-accounts/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // POST / without a label: named by its Telegram id, or by its phone number.
    let (status, by_id) = app
        .post(
            "/tracker-accounts/",
            &json!({"telegram_user_id": 777001, "api_id": 12345, "is_active": false}),
        )
        .await;
    assert_eq!(status, 201, "{by_id}");
    assert_eq!(by_id["label"], "777001");
    assert_eq!(by_id["telegram_user_id"], 777001);
    assert_eq!(by_id["api_id"], 12345);
    assert_eq!(by_id["is_active"], false);
    assert_eq!(by_id["is_auth"], false);
    assert!(by_id.get("api_hash").is_none(), "{by_id}");
    let (status, by_phone) = app
        .post(
            "/tracker-accounts/",
            &json!({"phone_number": "+15550001", "is_active": false}),
        )
        .await;
    assert_eq!(status, 201, "{by_phone}");
    assert_eq!(by_phone["label"], "+15550001");
    assert_eq!(by_phone["phone_number"], "+15550001");
    let by_id_id = by_id["id"].as_str().unwrap();
    let by_phone_id = by_phone["id"].as_str().unwrap();

    // GET / with the seed's filters.
    let (status, all) = app.get("/tracker-accounts/").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(items(&all).len(), 3, "main and the two new ones: {all}");
    let (_, inactive) = app.get("/tracker-accounts/?is_active=false").await;
    assert_eq!(ids(&inactive), [by_id_id, by_phone_id]);
    let (_, active) = app.get("/tracker-accounts/?is_active=true").await;
    assert_eq!(items(&active)[0]["label"], "main", "{active}");
    let (_, found) = app.get("/tracker-accounts/?telegram_user_id=777001").await;
    assert_eq!(ids(&found), [by_id_id]);
    let (_, found) = app
        .get(&format!("/tracker-accounts/?id={by_phone_id}"))
        .await;
    assert_eq!(ids(&found), [by_phone_id]);
    let (_, authed) = app.get("/tracker-accounts/?is_auth=false").await;
    assert!(ids(&authed).contains(&by_id_id), "{authed}");
    let (status, bad) = app.get("/tracker-accounts/?is_active=maybe").await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is_active"),
        "{bad}"
    );

    // GET one, PUT, PATCH.
    let (status, one) = app.get(&format!("/tracker-accounts/{by_id_id}/")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], by_id["id"]);
    let (status, put) = app
        .put(
            &format!("/tracker-accounts/{by_id_id}/"),
            &json!({"label": "backup", "telegram_user_id": 777001, "api_id": 54321, "is_active": false}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        (put["label"].as_str(), put["api_id"].as_i64()),
        (Some("backup"), Some(54321))
    );
    let (status, patched) = app
        .patch(
            &format!("/tracker-accounts/{by_id_id}/"),
            &json!({"phone_number": "+15550002"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["phone_number"], "+15550002");
    assert_eq!(patched["label"], "backup");

    // Tracker settings: the same accounts' phone, session and capacity.
    let (status, settings) = app.get("/tracker-settings/").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(items(&settings).len(), 3, "{settings}");
    assert!(
        items(&settings)
            .iter()
            .all(|setting| setting.get("session_string").is_none()),
        "the session is never shown: {settings}"
    );
    let (_, by_phone_filter) = app.get("/tracker-settings/?phone_number=%2B15550002").await;
    assert_eq!(ids(&by_phone_filter), [by_id_id]);
    let (_, by_account) = app
        .get("/tracker-settings/?tracker_account__telegram_user_id=777001")
        .await;
    assert_eq!(items(&by_account)[0]["tracker_account_id"], by_id["id"]);
    let (status, created) = app
        .post(
            "/tracker-settings/",
            &json!({"tracker_account_id": by_phone_id, "phone_number": "+15550003", "max_users": 5}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["max_users"], 5);
    assert_eq!(created["current_users"], 0);
    assert_eq!(created["has_session"], false);
    let (status, changed) = app
        .patch(
            &format!("/tracker-settings/{by_phone_id}/"),
            &json!({"max_users": 7}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["max_users"], 7);
    assert_eq!(changed["phone_number"], "+15550003");
    let (status, put) = app
        .put(
            &format!("/tracker-settings/{by_phone_id}/"),
            &json!({"phone_number": "+15550004", "max_users": 8}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["max_users"], 8);
    // DELETE resets the session and the phone; the account stays.
    assert_eq!(
        app.delete(&format!("/tracker-settings/{by_phone_id}/"))
            .await,
        204
    );
    let (status, reset) = app.get(&format!("/tracker-settings/{by_phone_id}/")).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["phone_number"], Value::Null);
    assert_eq!(reset["has_session"], false);
    assert_eq!(reset["max_users"], 8);
    let (status, _) = app.get(&format!("/tracker-accounts/{by_phone_id}/")).await;
    assert_eq!(status, 200);

    // DELETE a tracker account.
    assert_eq!(
        app.delete(&format!("/tracker-accounts/{by_phone_id}/"))
            .await,
        204
    );
    let (status, gone) = app.get(&format!("/tracker-accounts/{by_phone_id}/")).await;
    assert_eq!(status, 404, "{gone}");
    // Bad input is a 4xx naming what to fix.
    let (status, body) = app
        .post("/tracker-accounts/", &json!({"is_active": false}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("label"),
        "{body}"
    );
    let (status, _) = app.get("/tracker-accounts/not-a-uuid/").await;
    assert_eq!(status, 404);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn telegram_users_are_addressed_by_their_telegram_id() {
    let app = spawn_app(PEOPLE, |_| {}).await;
    let (status, created) = app
        .post(
            "/telegram-users/",
            &json!({"telegram_user_id": 4242, "role": "vip"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"], "vip");
    let (status, other) = app
        .post("/telegram-users/", &json!({"telegram_user_id": 4343}))
        .await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(other["role"], "user");

    let (status, one) = app.get("/telegram-users/4242/").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], created["id"]);
    assert!(one["created_at"].is_string() && one["updated_at"].is_string());
    let (_, vips) = app.get("/telegram-users/?role=vip").await;
    assert_eq!(ids(&vips), [created["id"].as_str().unwrap()]);
    let (_, by_telegram) = app.get("/telegram-users/?telegram_user_id=4343").await;
    assert_eq!(ids(&by_telegram), [other["id"].as_str().unwrap()]);
    let (_, by_id) = app
        .get(&format!(
            "/telegram-users/?id={}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(items(&by_id).len(), 1);

    // PUT (the whole record) and PATCH (a role change).
    let (status, put) = app
        .put(
            "/telegram-users/4242/",
            &json!({"telegram_user_id": 4242, "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["role"], "admin");
    let (status, moved) = app
        .put(
            "/telegram-users/4242/",
            &json!({"telegram_user_id": 1, "role": "user"}),
        )
        .await;
    assert_eq!(status, 400, "{moved}");
    let (status, banned) = app
        .patch("/telegram-users/4242/", &json!({"role": "banned"}))
        .await;
    assert_eq!(status, 200, "{banned}");
    assert_eq!(banned["role"], "banned");
    let (status, bad) = app
        .patch("/telegram-users/4242/", &json!({"role": "emperor"}))
        .await;
    assert_eq!(status, 422, "{bad}");

    assert_eq!(app.delete("/telegram-users/4242/").await, 204);
    let (status, _) = app.get("/telegram-users/4242/").await;
    assert_eq!(status, 404);
    let (_, rest) = app.get("/telegram-users/").await;
    assert_eq!(ids(&rest), [other["id"].as_str().unwrap()]);
}

/// The scenario's main account (from the configuration).
async fn main_account(app: &TestApp) -> String {
    let (_, accounts) = app.get("/tracker-accounts/").await;
    items(&accounts)[0]["id"].as_str().unwrap().to_owned()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn tracked_users_with_their_filters_username_change_and_visible_online() {
    let app = spawn_app(PEOPLE, |_| {}).await;
    let main = main_account(&app).await;
    let (status, ivan) = app
        .post(
            "/tracked-users/",
            &json!({"username": "ivan_online", "tracker_account_id": main}),
        )
        .await;
    assert_eq!(status, 201, "{ivan}");
    assert_eq!(ivan["tracker_account_id"], main.as_str());
    assert_eq!(ivan["telegram_user_id"], 1001);
    assert_eq!(ivan["username"], "ivan_online");
    assert_eq!(ivan["visible_online"], true);
    let (status, maria) = app
        .post(
            "/tracked-users/",
            &json!({"username": "maria_quiet", "visible_online": false}),
        )
        .await;
    assert_eq!(status, 201, "{maria}");
    let ivan_id = ivan["id"].as_str().unwrap();
    let maria_id = maria["id"].as_str().unwrap();

    let (status, all) = app.get("/tracked-users/").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [ivan_id, maria_id]);
    let (_, named) = app.get("/tracked-users/?username=ivan_online").await;
    assert_eq!(ids(&named), [ivan_id]);
    let (_, by_person) = app
        .get("/tracked-users/?telegram_user__telegram_user_id=1002")
        .await;
    assert_eq!(ids(&by_person), [maria_id]);
    let (_, none) = app
        .get("/tracked-users/?tracker_account__telegram_user_id=999999")
        .await;
    assert_eq!(items(&none).len(), 0, "{none}");

    // PUT/PATCH: `visible_online`, `username` (the same person's is accepted, someone else's
    // refused: the history is this person's).
    let (status, hidden) = app
        .patch(
            &format!("/tracked-users/{ivan_id}/"),
            &json!({"visible_online": false}),
        )
        .await;
    assert_eq!(status, 200, "{hidden}");
    assert_eq!(hidden["visible_online"], false);
    let (status, shown) = app
        .put(
            &format!("/tracked-users/{ivan_id}/"),
            &json!({"visible_online": true, "notify": true}),
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        (shown["visible_online"].as_bool(), shown["notify"].as_bool()),
        (Some(true), Some(true))
    );
    let (status, same) = app
        .patch(
            &format!("/tracked-users/{maria_id}/"),
            &json!({"username": "@maria_quiet"}),
        )
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["username"], "maria_quiet");
    let (status, other) = app
        .patch(
            &format!("/tracked-users/{maria_id}/"),
            &json!({"username": "petr_other"}),
        )
        .await;
    assert_eq!(status, 422, "{other}");
    assert!(
        other["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another Telegram user"),
        "{other}"
    );
    // The native API changes the username the same way.
    let (status, native) = app
        .patch(
            &format!("/api/tracked-users/{maria_id}"),
            &json!({"username": "petr_other"}),
        )
        .await;
    assert_eq!(status, 422, "{native}");

    assert_eq!(
        app.delete(&format!("/tracked-users/{maria_id}/")).await,
        204
    );
    let (_, one) = app.get(&format!("/tracked-users/{maria_id}/")).await;
    assert_eq!(
        one["is_active"], false,
        "no longer tracked, history kept: {one}"
    );
}

/// The person's sessions over the last two days, oldest first.
async fn sessions(app: &TestApp, tracked: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/tracked-users/{tracked}/sessions?hours=48"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().unwrap().clone()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn online_statuses_are_recorded_corrected_and_deleted_and_sessions_follow() {
    let app = spawn_app(PEOPLE, |_| {}).await;
    // Maria always shows "recently": her sessions come from the statuses posted here only.
    let (_, maria) = app
        .post("/tracked-users/", &json!({"username": "maria_quiet"}))
        .await;
    let maria_id = maria["id"].as_str().unwrap().to_owned();
    let start = (app.clock.now() - Duration::hours(6)).trunc_subsecs(0);
    let post = |offset: i64, is_online: bool| {
        let app = &app;
        let maria_id = maria_id.clone();
        async move {
            let (status, body) = app
                .post(
                    "/online-statuses/",
                    &json!({
                        "tracked_user_id": maria_id,
                        "is_online": is_online,
                        "created_at": rfc3339(start + Duration::seconds(offset)),
                    }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body
        }
    };
    let first = post(0, true).await;
    let second = post(60, true).await;
    let _closing = post(1200, false).await;
    assert_eq!(first["is_online"], true);
    assert_eq!(first["tracked_user_id"], maria_id.as_str());
    assert_eq!(common::timestamp(&first["created_at"]), start);
    let sessions_now = sessions(&app, &maria_id).await;
    assert_eq!(sessions_now.len(), 1, "{sessions_now:?}");
    assert_eq!(common::timestamp(&sessions_now[0]["started_at"]), start);

    // The list and its filters.
    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    let (status, online) = app
        .get(&format!(
            "/online-statuses/?tracked_user_id={maria_id}&is_online=true"
        ))
        .await;
    assert_eq!(status, 200, "{online}");
    assert_eq!(ids(&online), [first_id, second_id]);
    let (_, named) = app
        .get("/online-statuses/?username=maria_quiet&is_online=true")
        .await;
    assert_eq!(items(&named).len(), 2, "{named}");
    let window = format!(
        "/online-statuses/?created_at_after={}&created_at_before={}",
        rfc3339(start + Duration::seconds(30)),
        rfc3339(start + Duration::seconds(90)),
    );
    let (_, windowed) = app.get(&window).await;
    assert_eq!(ids(&windowed), [second_id]);
    let (status, one) = app.get(&format!("/online-statuses/{first_id}/")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["created_at"], first["created_at"]);

    // DELETE the opener: the session now starts at the second sighting.
    assert_eq!(
        app.delete(&format!("/online-statuses/{first_id}/")).await,
        204
    );
    let (status, _) = app.get(&format!("/online-statuses/{first_id}/")).await;
    assert_eq!(status, 404);
    let after_delete = sessions(&app, &maria_id).await;
    assert_eq!(after_delete.len(), 1, "{after_delete:?}");
    assert_eq!(
        common::timestamp(&after_delete[0]["started_at"]),
        start + Duration::seconds(60)
    );
    // PATCH it to offline: no session is left. PUT moves an observation in time.
    let (status, corrected) = app
        .patch(
            &format!("/online-statuses/{second_id}/"),
            &json!({"is_online": false}),
        )
        .await;
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["is_online"], false);
    assert!(sessions(&app, &maria_id).await.is_empty());
    let (status, moved) = app
        .put(
            &format!("/online-statuses/{second_id}/"),
            &json!({"is_online": true, "created_at": rfc3339(start + Duration::seconds(300))}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let after_put = sessions(&app, &maria_id).await;
    assert_eq!(after_put.len(), 1, "{after_put:?}");
    assert_eq!(
        common::timestamp(&after_put[0]["started_at"]),
        start + Duration::seconds(300)
    );

    // visible_online=false: the seed-002 list leaves the person out; the native list does not.
    let (status, _) = app
        .patch(
            &format!("/tracked-users/{maria_id}/"),
            &json!({"visible_online": false}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, hidden) = app
        .get(&format!("/online-statuses/?tracked_user_id={maria_id}"))
        .await;
    assert_eq!(items(&hidden).len(), 0, "{hidden}");
    let (_, native) = app
        .get(&format!(
            "/api/online-statuses?tracked_user_id={maria_id}&is_online=true"
        ))
        .await;
    assert_eq!(native["items"].as_array().unwrap().len(), 1, "{native}");

    // Bad input: a clear 4xx.
    let (status, body) = app
        .post(
            "/online-statuses/",
            &json!({"tracked_user_id": maria_id, "is_online": "yes"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get("/online-statuses/?created_at_after=yesterday")
        .await;
    assert_eq!(status, 400, "{body}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_route_takes_a_trailing_slash_and_the_pages_still_load() {
    let app = spawn_app(PEOPLE, |_| {}).await;
    for path in [
        "/api/accounts/",
        "/api/accounts",
        "/tracker-accounts",
        "/tracker-accounts/",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = app.get("/api/health/").await;
    assert_eq!(status, 200, "{body}");
    // A method a path does not take is still a 405, with or without the slash.
    let response = app
        .client
        .put(format!("{}/tracker-accounts/", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // The dashboard and the Swagger UI page are served as before.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, status) in [
        ("/", 200),
        ("/dashboard/", 200),
        ("/api/docs/", 200),
        ("/api/docs", 308),
    ] {
        let response = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
    }
    let (status, _) = app.get("/no-such-thing/").await;
    assert_eq!(status, 404);
}

const TWO_ONLINE: &str = r#"
[[users]]
id = 2001
username = "anna_shown"
online = [[0, 36000]]

[[users]]
id = 2002
username = "boris_hidden"
online = [[0, 36000]]
"#;

/// `visible_online = false` (the seed's "whether to show that the user is online"): the live
/// feed carries the other person's coming online, never this one's.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_person_with_visible_online_false_is_left_out_of_the_live_feed() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let app = spawn_app(TWO_ONLINE, |_| {}).await;
    let mut request = format!("{}/ws?user_id=0", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (status, boris) = app
        .post(
            "/tracked-users/",
            &json!({"username": "boris_hidden", "visible_online": false}),
        )
        .await;
    assert_eq!(status, 201, "{boris}");
    let (status, _) = app
        .post("/tracked-users/", &json!({"username": "anna_shown"}))
        .await;
    assert_eq!(status, 201);
    let boris_id = boris["id"].as_str().unwrap();
    // Boris is online as far as the service knows (his session is open)...
    app.eventually(
        &format!("/api/tracked-users/{boris_id}"),
        std::time::Duration::from_secs(10),
        |body| !body["open_session"].is_null(),
    )
    .await;
    // ...and the feed tells of Anna (whenever her turn came) and, for another half second after
    // both were stored, of no one else.
    let mut seen = Vec::new();
    let mut anna_seen_at = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let quiet_until = anna_seen_at.map(|at| at + std::time::Duration::from_millis(500));
        let until = quiet_until.unwrap_or(deadline).min(deadline);
        let Ok(frame) = tokio::time::timeout_at(until, ws.next()).await else {
            break;
        };
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == "presence" {
            let username = frame["event"]["data"]["user"]["username"].clone();
            if username == "anna_shown" && anna_seen_at.is_none() {
                anna_seen_at = Some(tokio::time::Instant::now());
            }
            seen.push(username);
        }
    }
    assert!(
        anna_seen_at.is_some(),
        "Anna's presence never arrived: {seen:?}"
    );
    assert!(
        !seen.iter().any(|username| username == "boris_hidden"),
        "{seen:?}"
    );
}

/// The seed's `api_hash` is write-only: a tracker account created (or changed) with one keeps it
/// sealed beside its session, never shows it, and a login given none uses it. Over MTProto
/// against the sandbox, with no `telegram.api_hash` to fall back on.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_tracker_accounts_api_hash_is_kept_for_its_login_and_never_shown() {
    use crate::logins::{PHONE, sandbox, stored_row};
    let (sandbox, _) = sandbox(None).await;
    let app = common::spawn_mtproto_app(&sandbox, |config| config.telegram.api_hash = None).await;

    let (status, body) = app
        .post(
            "/tracker-accounts/",
            &json!({"phone_number": PHONE, "api_id": 1, "api_hash": "   "}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_api_hash")),
        "{body}"
    );
    let (status, account) = app
        .post(
            "/tracker-accounts/",
            &json!({"phone_number": PHONE, "api_id": 1, "api_hash": "seed-api-hash"}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    assert!(account.get("api_hash").is_none(), "{account}");
    let id = account["id"].as_str().unwrap();
    let (_, shown) = app.get(&format!("/tracker-accounts/{id}/")).await;
    assert!(!shown.to_string().contains("seed-api-hash"), "{shown}");
    assert_eq!(
        stored_row(&app, id).await.api_hash.as_deref(),
        Some("seed-api-hash")
    );

    // A change keeps the new one.
    let (status, changed) = app
        .patch(
            &format!("/tracker-accounts/{id}/"),
            &json!({"api_hash": "seed-api-hash-2"}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed.get("api_hash").is_none(), "{changed}");

    // The login is given no api_hash and the service has none configured: the kept one serves.
    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "code_sent", "{body}");
    let code = sandbox.login_code(PHONE).expect("a code was sent");
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("logged_in")),
        "{body}"
    );
    assert_eq!(
        stored_row(&app, id).await.api_hash.as_deref(),
        Some("seed-api-hash-2")
    );
}
