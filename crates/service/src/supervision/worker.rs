//! A supervised actor whose work runs as tasks on the runtime's threads (the webhook dispatcher,
//! the bot, the WebSocket fan-out): actix runs every actor on one thread, which must not carry
//! their I/O. The worker starts the tasks, watches them, and is restarted when one panics; a
//! restart aborts what is left of the old tasks and starts them again. A worker that consumes
//! events is told of every commit ([`Committed`]) and passes it on to its tasks.

use actix::prelude::*;
use tokio::task::{AbortHandle, JoinHandle};

use super::{child::panic_message, tree::Child};
use crate::publish::Committed;
use tgwatch_core::events::Event;

/// Starts the worker's tasks: at the start and after every restart. The tasks pick their work
/// up where it is kept (the outbox, the database, a shared queue), not from the old tasks.
pub type StartTasks = Box<dyn FnMut() -> Vec<JoinHandle<()>>>;

/// Hands committed events to the worker's tasks (wakes them, or queues the events).
pub type OnCommitted = Box<dyn Fn(&[Event])>;

pub struct Worker {
    child: Child,
    start: StartTasks,
    running: Vec<AbortHandle>,
    on_committed: Option<OnCommitted>,
}

impl Worker {
    pub fn new(child: Child, start: StartTasks) -> Worker {
        Worker {
            child,
            start,
            running: Vec::new(),
            on_committed: None,
        }
    }

    /// The worker consumes committed events: `hand_over` passes them to its tasks.
    pub fn consuming(mut self, hand_over: OnCommitted) -> Worker {
        self.on_committed = Some(hand_over);
        self
    }

    fn abort_tasks(&mut self) {
        for task in self.running.drain(..) {
            task.abort();
        }
    }
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for task in (self.start)() {
            self.running.push(task.abort_handle());
            ctx.spawn(
                fut::wrap_future::<_, Self>(task).map(|ended, worker, ctx| match ended {
                    Err(error) if error.is_panic() => {
                        let message = panic_message(error.into_panic().as_ref());
                        worker
                            .child
                            .stopping_because(format!("a task panicked: {message}"));
                        ctx.stop();
                    }
                    // Finished (a bot whose token is refused stays off) or aborted by us.
                    _ => {}
                }),
            );
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.abort_tasks();
    }
}

impl Supervised for Worker {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.abort_tasks();
    }
}

crate::panics_on_request!(Worker);

/// Stops the worker for good (the service's stop): its tasks are aborted where they are and it
/// is not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for Worker {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        self.child.retire();
        self.abort_tasks();
        ctx.stop();
    }
}

impl Handler<Committed> for Worker {
    type Result = ();

    fn handle(&mut self, Committed(events): Committed, _ctx: &mut Self::Context) {
        if let Some(hand_over) = &self.on_committed {
            hand_over(&events);
        }
    }
}
