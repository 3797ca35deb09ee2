//! What the sandbox's test suites share: a real grammers client connected to the sandbox over
//! TCP, and timeouts on every step so that a protocol bug fails a test instead of hanging it.

#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use grammers_client::client::UpdateStream;
use grammers_client::sender::{ConnectionParams, NoRetries, RpcError, UpdatesConfiguration};
use grammers_client::session::storages::MemorySession;
use grammers_client::session::updates::UpdatesLike;
use grammers_client::{Client, InvocationError, SenderPool};
use tgwatch_sandbox::{AccountId, Sandbox};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const API_ID: i32 = 1;
/// Generous for a loopback round trip, short enough that a hang fails fast.
pub const STEP: Duration = Duration::from_secs(5);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    within_for(STEP, what, future).await
}

pub async fn within_for<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// The RPC error of a call that must fail with one.
pub fn rpc_error(result: Result<impl std::fmt::Debug, InvocationError>) -> RpcError {
    match result {
        Err(InvocationError::Rpc(error)) => error,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

/// A grammers client with the retry policy tgwatch uses (NoRetries: the caller, not the
/// library, decides what to do about a FLOOD_WAIT). Its connection stops when it is dropped.
pub struct TestClient {
    pub client: Client,
    pub session: Arc<MemorySession>,
    updates: Option<mpsc::Receiver<UpdatesLike>>,
    runner: JoinHandle<()>,
}

impl TestClient {
    /// Logged in as `account`.
    pub fn connect(sandbox: &Sandbox, account: AccountId) -> Self {
        Self::on_session(sandbox.session_for(account).expect("session"))
    }

    /// On a fresh session: a new key, logged in to nobody.
    pub fn fresh(sandbox: &Sandbox) -> Self {
        Self::on_session(MemorySession::from(sandbox.fresh_session_data()))
    }

    /// On any session, e.g. one made wrong on purpose.
    pub fn on_session(session: MemorySession) -> Self {
        let session = Arc::new(session);
        let params = ConnectionParams {
            retry_policy: Box::new(NoRetries),
            ..Default::default()
        };
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(Arc::clone(&session) as _, API_ID, params);
        let runner = tokio::spawn(runner.run());
        TestClient {
            client: Client::new(handle),
            session,
            updates: Some(updates),
            runner,
        }
    }

    /// The pushed `Updates` as they came off the wire (instead of [`Self::stream`]), to check
    /// their envelope.
    pub fn raw_updates(&mut self) -> mpsc::UnboundedReceiver<grammers_client::tl::enums::Updates> {
        let mut updates = self.updates.take().expect("updates taken once");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(like) = updates.recv().await {
                if let UpdatesLike::Updates(raw) = like
                    && tx.send(raw).is_err()
                {
                    break;
                }
            }
        });
        rx
    }

    pub async fn stream(&mut self) -> UpdateStream {
        let updates = self.updates.take().expect("updates taken once");
        within(
            "stream_updates",
            self.client
                .stream_updates(updates, UpdatesConfiguration { catch_up: false }),
        )
        .await
        .expect("stream")
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.runner.abort();
    }
}
