//! Reads people's stored gap-rule state for their actors, many people per query.
//!
//! Every person's actor needs its state before it handles an observation, and a fleet starts
//! all of them at once. Read one by one (five statements each), 100,000 people kept the actor
//! thread busy with database round trips for over a minute while the early starters' polls fell
//! due. Requests queue here; one task takes whatever is waiting (up to [`BATCH`]) and reads it
//! with three statements.

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use tgwatch_core::presence::sessions::SessionFolder;
use tgwatch_store::{self as storage, StorageError};

/// People read per round.
const BATCH: usize = 1_000;

struct Request {
    tracked_user_id: Uuid,
    /// The gap rule's gap as the person's actor has it (a reload may change it).
    gap: chrono::Duration,
    reply: oneshot::Sender<Result<SessionFolder, StorageError>>,
}

/// A handle on the loader's task; cloned into every person's actor.
#[derive(Clone)]
pub struct StateLoader {
    requests: mpsc::UnboundedSender<Request>,
}

impl StateLoader {
    /// Starts the loader's task on the current runtime; it ends when the last handle is gone.
    pub fn start(db: DatabaseConnection) -> StateLoader {
        let (requests, waiting) = mpsc::unbounded_channel();
        tokio::spawn(serve(db, waiting));
        StateLoader { requests }
    }

    /// The stored state of one person (a fresh one when nothing is stored).
    pub async fn load(
        &self,
        tracked_user_id: Uuid,
        gap: chrono::Duration,
    ) -> Result<SessionFolder, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request {
                tracked_user_id,
                gap,
                reply,
            })
            .map_err(|_| StorageError::Unavailable)?;
        answer.await.map_err(|_| StorageError::Unavailable)?
    }
}

async fn serve(db: DatabaseConnection, mut waiting: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        batch.sort_by_key(|request| request.gap);
        while let Some(gap) = batch.last().map(|request| request.gap) {
            let same_gap = batch.split_off(batch.partition_point(|request| request.gap < gap));
            read(&db, gap, same_gap).await;
        }
    }
}

/// Reads the state of everyone in `batch` (all with this `gap`) and answers each.
async fn read(db: &DatabaseConnection, gap: chrono::Duration, mut batch: Vec<Request>) {
    let ids: Vec<Uuid> = batch
        .iter()
        .map(|request| request.tracked_user_id)
        .collect();
    match storage::sessions::resume_folders(db, &ids, gap).await {
        // Cloned, not taken: a person asked twice (an actor restarted while its first read
        // waited) gets the same state both times.
        Ok(folders) => answer_each(&mut batch, |id| {
            Ok(folders
                .get(&id)
                .cloned()
                .unwrap_or_else(|| SessionFolder::new(gap)))
        }),
        Err(error) => {
            let reason = error.to_string();
            answer_each(&mut batch, |_| {
                Err(StorageError::TaskFailed(format!(
                    "reading the state of {} people: {reason}",
                    ids.len()
                )))
            })
        }
    }
}

/// Answers and empties `batch`; an actor that stopped meanwhile no longer listens.
fn answer_each(
    batch: &mut Vec<Request>,
    mut answer: impl FnMut(Uuid) -> Result<SessionFolder, StorageError>,
) {
    for request in batch.drain(..) {
        let _ = request.reply.send(answer(request.tracked_user_id));
    }
}
