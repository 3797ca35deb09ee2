//! Presence tracking end to end: the service on a random port, a scripted Telegram at 600x,
//! driven over HTTP only.

use crate::common;

use std::time::Duration;

use chrono::SubsecRound;

use common::{SPEED, spawn_app, timestamp};
use serde_json::{Value, json};

const ALICE_AND_CAROL: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"
# Online 0-600, back after 30 s, until 1200; again 2000-2300. Polls come every 60-120 s (+5 s
# batch delay), so the return is seen at most 155 s after she left: less than the 180 s gap.
online = [[0, 600], [630, 1200], [2000, 2300]]

[[users]]
id = 1003
username = "carol_hidden"
hidden = true
"#;

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn polls_are_folded_into_sessions_by_the_gap_rule() {
    // Polls every 10-20 s (+1 s batch delay) see her return at most 21 s after it happens, and
    // the gap is 400 s: the 30 s break stays inside a session and the 800 s one ends it unless
    // the machine delays a poll by over 349 s of service time (580 ms of real time at 600x).
    let app = spawn_app(ALICE_AND_CAROL, |config| {
        config.presence.poll_min_seconds = 10;
        config.presence.poll_max_seconds = 20;
        config.presence.batch_delay_seconds = 1;
        config.presence.gap_seconds = 400;
    })
    .await;
    let alice = app.track("@Alice_W").await;

    // The second session is closed by the first poll a full gap after it.
    app.wait_until_second(2300 + 400).await;
    let path = format!("/api/tracked-users/{alice}/sessions?hours=2");
    let body = app
        .eventually(&path, Duration::from_secs(60), |body| {
            body["sessions"]
                .as_array()
                .is_some_and(|s| s.last().is_some_and(|last| last["ended_at"].is_string()))
        })
        .await;
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{sessions:?}");

    // Each session starts at the first poll that saw her online, and ends exactly when Telegram
    // says she left (one session across the 30 s break).
    let (status, checks) = app
        .get(&format!(
            "/api/online-statuses?tracked_user_id={alice}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200);
    let checks = checks["items"].as_array().expect("items");
    // (A poll's `observed_at` is when it was asked for; on a loaded machine Telegram may answer
    // a poll asked just before second 0 as of after it, so "after" is measured from the
    // previous session's end, not from the scenario's second.)
    let first_online_after = |after: Option<chrono::DateTime<chrono::Utc>>| {
        checks
            .iter()
            .filter(|c| c["status"] == "online")
            .map(|c| timestamp(&c["observed_at"]))
            .filter(|t| after.is_none_or(|after| *t > after))
            .min()
            .expect("an online poll")
    };
    let first_start = timestamp(&sessions[0]["started_at"]);
    assert_eq!(first_start, first_online_after(None));
    assert_eq!(timestamp(&sessions[0]["ended_at"]), app.at(1200));
    assert_eq!(sessions[0]["is_open"], json!(false));
    let second_start = timestamp(&sessions[1]["started_at"]);
    assert_eq!(second_start, first_online_after(Some(app.at(1200))));
    assert_eq!(timestamp(&sessions[1]["ended_at"]), app.at(2300));

    // Statistics agree with the sessions.
    let (status, stats) = app
        .get(&format!("/api/tracked-users/{alice}/stats?hours=2"))
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["session_count"], json!(2));
    let expected =
        (app.at(1200) - first_start).num_seconds() + (app.at(2300) - second_start).num_seconds();
    // Whole seconds: each session may lose its fraction of a second.
    let online = stats["online_seconds"].as_i64().expect("seconds");
    assert!(
        (expected..=expected + 2).contains(&online),
        "{online} vs {expected}"
    );
    let longest = stats["longest_session_seconds"].as_i64().expect("seconds");
    assert!(((app.at(1200) - first_start).num_seconds() - longest).abs() <= 1);
    let hourly: i64 = stats["hourly_online_seconds"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|v| v.as_i64().expect("seconds"))
        .sum();
    assert_eq!(hourly, online, "the histogram adds up to the total");

    // The raw observations are kept and filterable.
    let (status, online) = app
        .get(&format!(
            "/api/online-statuses?tracked_user_id={alice}&is_online=true&limit=1000"
        ))
        .await;
    assert_eq!(status, 200);
    let online = online["items"].as_array().expect("items");
    assert!(
        online.len() >= 8,
        "polled again and again while online: {}",
        online.len()
    );
    assert!(
        online
            .iter()
            .all(|o| o["status"] == "online" && o["source"] == "poll")
    );
    assert_eq!(
        online.len(),
        checks.iter().filter(|c| c["status"] == "online").count(),
        "the filter keeps every online observation"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn hidden_status_is_recorded_but_never_counted() {
    let app = spawn_app(ALICE_AND_CAROL, |_| {}).await;
    let carol = app.track("carol_hidden").await;
    app.wait_until_second(600).await;
    let body = app
        .eventually(
            &format!("/api/online-statuses?tracked_user_id={carol}"),
            Duration::from_secs(30),
            |body| {
                body["items"]
                    .as_array()
                    .is_some_and(|items| items.len() >= 3)
            },
        )
        .await;
    assert!(
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|o| o["status"] == "recently")
    );
    let (_, stats) = app
        .get(&format!("/api/tracked-users/{carol}/stats?hours=24"))
        .await;
    assert_eq!(stats["session_count"], json!(0));
    assert_eq!(stats["online_seconds"], json!(0));
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn manual_and_late_observations_go_through_the_same_gap_rule() {
    let app = spawn_app(ALICE_AND_CAROL, |_| {}).await;
    // Carol's polls say "recently", which neither opens nor closes sessions by itself.
    let carol = app.track("carol_hidden").await;
    let base = app.clock.now();
    let at = |offset: i64| (base + chrono::Duration::seconds(offset)).to_rfc3339();
    let observe = |body: Value| {
        let app = &app;
        async move { app.post("/api/online-statuses", &body).await }
    };

    let (status, created) = observe(json!({"tracked_user_id": carol, "status": "online",
        "observed_at": at(-3600), "expires_at": at(-3500)}))
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "manual");
    let (status, _) = observe(json!({"tracked_user_id": carol, "status": "offline",
        "observed_at": at(-3400), "was_online_at": at(-3450)}))
    .await;
    assert_eq!(status, 201);
    // Older than everything before: the history is folded again.
    let (status, _) = observe(json!({"tracked_user_id": carol, "is_online": true,
        "observed_at": at(-5000)}))
    .await;
    assert_eq!(status, 201);
    let (status, _) = observe(json!({"tracked_user_id": carol, "status": "offline",
        "observed_at": at(-4800), "was_online_at": at(-4850)}))
    .await;
    assert_eq!(status, 201);
    // A duplicate changes nothing.
    let (status, _) = observe(json!({"tracked_user_id": carol, "status": "offline",
        "observed_at": at(-3400), "was_online_at": at(-3450)}))
    .await;
    assert_eq!(status, 201);

    let path = format!(
        "/api/tracked-users/{carol}/sessions?from={}&to={}",
        urlencode(&at(-6000)),
        urlencode(&at(0))
    );
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().expect("sessions");
    let spans: Vec<(String, Value)> = sessions
        .iter()
        .map(|s| {
            (
                s["started_at"].as_str().expect("start").to_owned(),
                s["ended_at"].clone(),
            )
        })
        .collect();
    assert_eq!(sessions.len(), 2, "{spans:?}");
    assert_eq!(
        timestamp(&sessions[0]["started_at"]),
        base - chrono::Duration::seconds(5000)
    );
    assert_eq!(
        timestamp(&sessions[0]["ended_at"]),
        base - chrono::Duration::seconds(4850)
    );
    assert_eq!(
        timestamp(&sessions[1]["started_at"]),
        base - chrono::Duration::seconds(3600)
    );
    assert_eq!(
        timestamp(&sessions[1]["last_online_at"]),
        base - chrono::Duration::seconds(3450)
    );
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn due_polls_are_batched_into_few_calls() {
    let scenario: String = (0..300)
        .map(|i| {
            format!(
                "[[users]]\nid = {}\nusername = \"batch{i:04}\"\nonline = [[0, 100000]]\n",
                5000 + i
            )
        })
        .collect();
    let app = spawn_app(&scenario, |config| {
        config.presence.batch_delay_seconds = 60;
        config.tracked_users = (0..300)
            .map(|i| tgwatch_core::config::TrackedUserConfig {
                username: Some(format!("batch{i:04}")),
                telegram_user_id: None,
                account: None,
                notify: false,
            })
            .collect();
    })
    .await;
    // The configuration's users are tracked in the background after start-up.
    app.eventually(
        "/api/tracked-users?limit=1000",
        // Generous: resolving 300 users one by one is slow in a debug build on a busy machine.
        Duration::from_secs(120),
        |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| items.len() == 300)
        },
    )
    .await;
    let counts = app.telegram.counts();
    let calls_before = counts
        .get_users_calls
        .load(std::sync::atomic::Ordering::Relaxed);
    let polls_before = counts
        .users_requested
        .load(std::sync::atomic::Ordering::Relaxed);
    // About eight poll rounds.
    tokio::time::sleep(Duration::from_secs_f64(720.0 / SPEED)).await;
    let calls = counts
        .get_users_calls
        .load(std::sync::atomic::Ordering::Relaxed)
        - calls_before;
    let polls = counts
        .users_requested
        .load(std::sync::atomic::Ordering::Relaxed)
        - polls_before;
    assert!(
        polls >= 300 * 4,
        "every user polled every 60-120 s: {polls} polls"
    );
    let calls_per_100 = calls as f64 * 100.0 / polls as f64;
    assert!(calls_per_100 <= 1.0, "{calls} calls for {polls} polls");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn flood_wait_pauses_the_account_and_is_logged() {
    let scenario = format!(
        "{ALICE_AND_CAROL}\n[[flood_waits]]\naccount = \"main\"\nat = 300\nseconds = 400\n"
    );
    let app = spawn_app(&scenario, |_| {}).await;
    let alice = app.track("alice_w").await;
    app.wait_until_second(1100).await;

    let (_, logs) = app.get("/api/logs?level=warning").await;
    let logs = logs["items"].as_array().expect("items");
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("FLOOD_WAIT"))),
        "{logs:?}"
    );

    let (_, checks) = app
        .get(&format!(
            "/api/online-statuses?tracked_user_id={alice}&limit=1000"
        ))
        .await;
    let times: Vec<_> = checks["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| timestamp(&c["observed_at"]))
        .collect();
    // Nothing was asked while the account waited, and polling resumed afterwards.
    let flood_started = times
        .iter()
        .filter(|t| **t < app.at(300) + chrono::Duration::seconds(130))
        .max()
        .copied();
    let paused = times
        .iter()
        .filter(|t| **t > app.at(450) && **t < app.at(690))
        .count();
    assert_eq!(
        paused, 0,
        "polls during the wait: {times:?} (flood from {flood_started:?})"
    );
    assert!(
        times.iter().any(|t| *t > app.at(700)),
        "polling resumed: {times:?}"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn untracking_keeps_history_and_purge_drops_it() {
    let app = spawn_app(ALICE_AND_CAROL, |_| {}).await;
    let alice = app.track("alice_w").await;
    app.wait_until_second(400).await;
    let statuses = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");
    app.eventually(&statuses, Duration::from_secs(30), |b| {
        !b["items"].as_array().expect("items").is_empty()
    })
    .await;

    assert_eq!(
        app.delete(&format!("/api/tracked-users/{alice}")).await,
        204
    );
    let untracked_at = app.clock.now();
    let (_, user) = app.get(&format!("/api/tracked-users/{alice}")).await;
    assert_eq!(user["is_active"], json!(false));
    // A poll already on its way when she was untracked may still land, stamped within the
    // batch delay (5 s); one more poll interval (120 s) of slack covers a slow machine. Polling
    // that went on would show several polls in the 600 s after that.
    let poll_max = chrono::Duration::seconds(120);
    app.clock
        .sleep_until(untracked_at + poll_max + chrono::Duration::seconds(600))
        .await;
    let observed_at = |body: &Value| -> Vec<chrono::DateTime<chrono::Utc>> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| timestamp(&c["observed_at"]))
            .collect()
    };
    let (_, after) = app.get(&statuses).await;
    let after = observed_at(&after);
    assert!(
        after.iter().all(|t| *t <= untracked_at + poll_max),
        "no polls after untracking at {untracked_at}: {after:?}"
    );
    assert!(!after.is_empty(), "history kept");

    // Tracking again keeps the same record and its history, and polling resumes.
    let again = app.track("alice_w").await;
    assert_eq!(again, alice);
    let tracked_again_at = app.clock.now();
    app.eventually(&statuses, Duration::from_secs(30), |body| {
        observed_at(body).iter().any(|t| *t > tracked_again_at)
    })
    .await;
    let (_, user) = app.get(&format!("/api/tracked-users/{alice}")).await;
    assert_eq!(user["is_active"], json!(true));

    assert_eq!(
        app.delete(&format!("/api/tracked-users/{alice}?purge=true"))
            .await,
        204
    );
    let (status, _) = app.get(&format!("/api/tracked-users/{alice}")).await;
    assert_eq!(status, 404);
    let (_, gone) = app.get(&statuses).await;
    assert_eq!(gone["items"], json!([]));
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn cursor_pagination_walks_every_observation_once() {
    let app = spawn_app(ALICE_AND_CAROL, |_| {}).await;
    let alice = app.track("alice_w").await;
    app.wait_until_second(1500).await;
    let all_path = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");
    let (_, all) = app.get(&all_path).await;
    let all: Vec<Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert!(all.len() >= 6);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/online-statuses?tracked_user_id={alice}&limit=4");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (_, page) = app.get(&path).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen[..all.len()],
        all[..],
        "pages in order without gaps or repeats"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn pushed_status_changes_are_observations_too() {
    let scenario = r#"
[[users]]
id = 1005
username = "dave_contact"
online = [[300, 420], [900, 960]]
push = true
"#;
    let app = spawn_app(scenario, |_| {}).await;
    let dave = app.track("dave_contact").await;
    app.wait_until_second(1000).await;
    let body = app
        .eventually(
            &format!("/api/online-statuses?tracked_user_id={dave}&limit=1000"),
            Duration::from_secs(30),
            |body| {
                body["items"].as_array().is_some_and(|items| {
                    items.iter().filter(|i| i["source"] == "push").count() >= 4
                })
            },
        )
        .await;
    let pushes: Vec<&Value> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["source"] == "push")
        .collect();
    // Each change is seen while it holds: her coming online during her first visit (300-420),
    // her leaving before she is back (420-900). The bounds leave a busy machine 200 ms of real
    // time at 600x to deliver a push.
    let first = |status: &str, after: i64| {
        pushes
            .iter()
            .filter(|p| p["status"] == status)
            .map(|p| timestamp(&p["observed_at"]))
            .filter(|t| *t >= app.at(after))
            .min()
            .unwrap_or_else(|| panic!("a push {status} after second {after}: {pushes:?}"))
    };
    let online = first("online", 300);
    assert!(online < app.at(420), "{online} vs {}", app.at(300));
    let offline = first("offline", 420);
    assert!(offline < app.at(900), "{offline} vs {}", app.at(420));
}

/// A random history of one day, as POST bodies in time order: steps of 0 to 400 s (0: statuses
/// of one instant), every kind of status, some exact repeats.
fn random_history(
    rng: &mut impl rand::Rng,
    user: &str,
    day: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let at = |seconds: i64| (day + chrono::Duration::seconds(seconds)).to_rfc3339();
    let mut t = 0;
    let mut history: Vec<Value> = Vec::new();
    for _ in 0..rng.random_range(5..30) {
        if let Some(last) = history.last()
            && rng.random_bool(0.05)
        {
            history.push(last.clone());
            continue;
        }
        t += [0, 0, 1, 30, 60, 90, 120, 150, 200, 400][rng.random_range(0..10)];
        history.push(match rng.random_range(0..10) {
            0..=3 => json!({"tracked_user_id": user, "status": "online", "observed_at": at(t),
                "expires_at": at(t + rng.random_range(0..300))}),
            4..=6 => json!({"tracked_user_id": user, "status": "offline", "observed_at": at(t),
                "was_online_at": at(t - rng.random_range(0..400))}),
            7 => json!({"tracked_user_id": user, "status": "offline", "observed_at": at(t)}),
            8 => json!({"tracked_user_id": user, "status": "recently", "observed_at": at(t)}),
            _ => json!({"tracked_user_id": user, "status": "unknown", "observed_at": at(t)}),
        });
    }
    history
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn sessions_from_late_observations_equal_a_full_fold_of_the_stored_history() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use tgwatch_core::presence::sessions::fold;
    use tgwatch_store as storage;

    let app = spawn_app(ALICE_AND_CAROL, |config| {
        // Polls add nothing to this test (they would be folded as well).
        config.presence.poll_min_seconds = 10_000_000;
        config.presence.poll_max_seconds = 10_000_000;
        // The history goes back 40 days: raw observations are kept for it.
        config.retention.status_checks_days = 60;
    })
    .await;
    let carol = app.track("carol_hidden").await;
    let first_day = app.clock.now() - chrono::Duration::days(40);
    let mut rng = StdRng::seed_from_u64(5);
    for day in 0..30 {
        let history = random_history(&mut rng, &carol, first_day + chrono::Duration::days(day));
        // Mostly in order; now and then one arrives a few places late.
        let mut arrivals = history.clone();
        for _ in 0..rng.random_range(0..6) {
            let from = rng.random_range(0..arrivals.len());
            let to = from.saturating_sub(rng.random_range(0..8));
            let moved = arrivals.remove(from);
            arrivals.insert(to, moved);
        }
        // Now and then a day comes entirely after the next one.
        if day % 7 == 3 {
            let later_that_day =
                first_day + chrono::Duration::days(day) + chrono::Duration::hours(12);
            arrivals.splice(0..0, random_history(&mut rng, &carol, later_that_day));
        }
        for body in arrivals {
            let (status, created) = app.post("/api/online-statuses", &body).await;
            assert_eq!(status, 201, "{body}: {created}");
        }
    }

    let db = storage::connect(&app.database_url, 1)
        .await
        .expect("database");
    let carol = carol.parse().expect("uuid");
    let history = storage::observations::all_of(&db, carol)
        .await
        .expect("history");
    let (expected, _) = fold(history.clone(), chrono::Duration::seconds(180));
    let stored = storage::sessions::all_of(&db, carol)
        .await
        .expect("sessions");
    assert!(
        expected.len() >= 20,
        "{} sessions: a history worth the name",
        expected.len()
    );
    assert_eq!(stored, expected, "history: {history:?}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn statistics_count_the_part_of_a_session_inside_the_window() {
    let app = spawn_app(ALICE_AND_CAROL, |_| {}).await;
    let carol = app.track("carol_hidden").await;
    let base = app.clock.now().trunc_subsecs(0);
    let at = |offset: i64| (base + chrono::Duration::seconds(offset)).to_rfc3339();
    // One session from -3600 to -3300, closed by the hidden status a full gap later.
    for body in [
        json!({"tracked_user_id": carol, "status": "online", "observed_at": at(-3600), "expires_at": at(-3300)}),
        json!({"tracked_user_id": carol, "status": "offline", "observed_at": at(-3200), "was_online_at": at(-3300)}),
        json!({"tracked_user_id": carol, "status": "recently", "observed_at": at(-2000)}),
    ] {
        let (status, body) = app.post("/api/online-statuses", &body).await;
        assert_eq!(status, 201, "{body}");
    }
    let stats = |from: i64, to: i64| {
        let app = &app;
        let carol = &carol;
        async move {
            let (status, body) = app
                .get(&format!(
                    "/api/tracked-users/{carol}/stats?from={}&to={}",
                    urlencode(&at(from)),
                    urlencode(&at(to))
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    // (window, seconds of the session inside it, first and last online moment inside it)
    for (from, to, seconds, first, last) in [
        (-3450, 0, 150, -3450, -3300),
        (-4000, -3500, 100, -3600, -3500),
        (-3500, -3400, 100, -3500, -3400),
        (-7200, 0, 300, -3600, -3300),
    ] {
        let body = stats(from, to).await;
        assert_eq!(body["session_count"], json!(1), "{from}..{to}: {body}");
        assert_eq!(
            body["online_seconds"],
            json!(seconds),
            "{from}..{to}: {body}"
        );
        assert_eq!(
            body["longest_session_seconds"],
            json!(seconds),
            "{from}..{to}: {body}"
        );
        assert_eq!(
            timestamp(&body["first_online"]),
            base + chrono::Duration::seconds(first)
        );
        assert_eq!(
            timestamp(&body["last_online"]),
            base + chrono::Duration::seconds(last)
        );
    }
    // A window that misses the session counts nothing.
    let body = stats(-3200, 0).await;
    assert_eq!(body["session_count"], json!(0), "{body}");
    assert_eq!(body["online_seconds"], json!(0), "{body}");
}
