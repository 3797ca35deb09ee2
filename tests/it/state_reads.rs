//! People's stored gap-rule state read many at a time (`storage::sessions::resume_folders`, what
//! the people's actors start from), against a real database (SQLite, or PostgreSQL with
//! TGWATCH_TEST_DATABASE_URL): the same as reading each person alone.

use crate::common;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sea_orm::DatabaseConnection;
use tgwatch_core::presence::{
    Observation, Source, Status,
    sessions::{Session, SessionFolder},
};
use tgwatch_store::{
    self as storage,
    observations::{NewObservation, PendingWrites},
};
use uuid::Uuid;

const GAP: Duration = Duration::minutes(3);

fn observed(
    tracked_user_id: Uuid,
    at: DateTime<Utc>,
    status: Status,
    sessions: Vec<Session>,
) -> NewObservation {
    NewObservation {
        id: Uuid::now_v7(),
        tracked_user_id,
        account_id: None,
        observation: Observation {
            observed_at: at,
            status,
        },
        source: Source::Poll,
        recorded_at: at,
        sessions,
        events: Vec::new(),
    }
}

/// What a person's actor started from before the reads were batched: each piece read alone.
async fn read_alone(db: &DatabaseConnection, id: Uuid) -> SessionFolder {
    let open = storage::sessions::open_of(db, id)
        .await
        .expect("open session");
    let newest = storage::observations::newest_before(db, id, None, None)
        .await
        .expect("newest");
    let online = storage::observations::newest_before(
        db,
        id,
        None,
        Some(tgwatch_core::presence::StatusKind::Online),
    )
    .await
    .expect("newest online");
    SessionFolder::resume(
        GAP,
        open.as_ref().map(storage::sessions::from_row),
        newest,
        online.map(|online| online.observed_at),
    )
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_state_of_many_people_read_at_once_is_each_ones_own() {
    let (db, _dir) = common::migrated_database().await;
    let t0 = Utc::now().trunc_subsecs(6) - Duration::hours(1);
    let at = |minutes: i64| t0 + Duration::minutes(minutes);

    // Online now, in a session opened after an earlier one closed; two observations at her
    // newest instant (the greater one counts).
    let alice = common::insert_tracked_user(&db, "alice").await;
    // Offline now after an online spell: the newest online sighting is older than the newest.
    let bob = common::insert_tracked_user(&db, "bob").await;
    // Observed, never online, no session.
    let carol = common::insert_tracked_user(&db, "carol").await;
    // Nothing stored.
    let dave = common::insert_tracked_user(&db, "dave").await;
    let closed = Session {
        started_at: at(1),
        last_online_at: at(2),
        ended_at: Some(at(2)),
    };
    let open = Session {
        started_at: at(10),
        last_online_at: at(12),
        ended_at: None,
    };
    let mut writes = PendingWrites::default();
    for record in [
        observed(
            alice,
            at(1),
            Status::Online { expires: at(2) },
            vec![closed],
        ),
        observed(
            alice,
            at(10),
            Status::Online { expires: at(11) },
            vec![open],
        ),
        observed(alice, at(12), Status::Recently, vec![]),
        observed(
            alice,
            at(12),
            Status::Online { expires: at(13) },
            vec![open],
        ),
        observed(bob, at(3), Status::Online { expires: at(4) }, vec![]),
        observed(
            bob,
            at(20),
            Status::Offline {
                was_online: Some(at(5)),
            },
            vec![],
        ),
        observed(carol, at(7), Status::LastWeek, vec![]),
    ] {
        writes.push(record);
    }
    storage::observations::write(&db, &writes)
        .await
        .expect("write");

    let people = [alice, bob, carol, dave];
    let folders = storage::sessions::resume_folders(&db, &people, GAP)
        .await
        .expect("read at once");
    for (name, id) in ["alice", "bob", "carol"].into_iter().zip(people) {
        let alone = read_alone(&db, id).await;
        assert_eq!(
            format!("{:?}", folders[&id]),
            format!("{alone:?}"),
            "{name}'s state read with the others differs from read alone"
        );
    }
    assert!(folders[&alice].open_session().is_some());
    let greater = [Status::Recently, Status::Online { expires: at(13) }]
        .map(|status| Observation {
            observed_at: at(12),
            status,
        })
        .into_iter()
        .max();
    assert_eq!(
        folders[&alice].last_observation().copied(),
        greater,
        "of two observations at one instant, the greater one"
    );
    assert!(folders[&bob].open_session().is_none());
    assert!(
        folders
            .get(&dave)
            .is_none_or(|folder| folder.last_observation().is_none()),
        "nobody stored for dave"
    );
    // Many at once: more people than one statement binds on SQLite.
    let many: Vec<Uuid> = (0..40_000).map(|_| Uuid::now_v7()).chain(people).collect();
    let folders = storage::sessions::resume_folders(&db, &many, GAP)
        .await
        .expect("read 40,004 at once");
    assert_eq!(
        format!("{:?}", folders[&alice]),
        format!("{:?}", read_alone(&db, alice).await)
    );
}

/// The loader the people's actors ask: requests that arrive together are read together, a
/// person asked twice gets the same state twice, and each gets the gap it asked with.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_loader_answers_every_request_even_twice_for_one_person() {
    let (db, _dir) = common::migrated_database().await;
    let at = Utc::now().trunc_subsecs(6) - Duration::minutes(30);
    let alice = common::insert_tracked_user(&db, "alice").await;
    let open = Session {
        started_at: at,
        last_online_at: at + Duration::minutes(1),
        ended_at: None,
    };
    let mut writes = PendingWrites::default();
    writes.push(observed(
        alice,
        at,
        Status::Online {
            expires: at + Duration::minutes(1),
        },
        vec![open],
    ));
    storage::observations::write(&db, &writes)
        .await
        .expect("write");

    let loader = tgwatch_service::actors::state_loader::StateLoader::start(db.clone());
    let other_gap = Duration::minutes(10);
    let (first, second, longer_gap, nobody) = tokio::join!(
        loader.load(alice, GAP),
        loader.load(alice, GAP),
        loader.load(alice, other_gap),
        loader.load(Uuid::now_v7(), GAP),
    );
    let alone = format!("{:?}", read_alone(&db, alice).await);
    assert_eq!(format!("{:?}", first.expect("first")), alone);
    assert_eq!(format!("{:?}", second.expect("second")), alone);
    let longer_gap = longer_gap.expect("other gap");
    assert_eq!(longer_gap.open_session(), Some(&open));
    assert!(
        format!("{longer_gap:?}").contains(&format!("{other_gap:?}")),
        "{longer_gap:?}"
    );
    assert!(nobody.expect("nobody").last_observation().is_none());
}
