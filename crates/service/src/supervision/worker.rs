//! A supervised actor whose work runs as tasks on the runtime's threads (the webhook dispatcher,
//! the bot, the WebSocket fan-out): actix runs every actor on one thread, which must not carry
//! their I/O. The worker starts the tasks, watches them, and is restarted when one panics; a
//! restart aborts what is left of the old tasks and starts them again.

use actix::prelude::*;
use tokio::task::{AbortHandle, JoinHandle};

use super::{child::panic_message, tree::Child};

/// Starts the worker's tasks: at the start and after every restart. The tasks pick their work
/// up where it is kept (the outbox, the database, a shared queue), not from the old tasks.
pub type StartTasks = Box<dyn FnMut() -> Vec<JoinHandle<()>>>;

pub struct Worker {
    child: Child,
    start: StartTasks,
    running: Vec<AbortHandle>,
}

impl Worker {
    pub fn new(child: Child, start: StartTasks) -> Worker {
        Worker {
            child,
            start,
            running: Vec::new(),
        }
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
