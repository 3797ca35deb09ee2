//! The actix system an integration test runs in:
//! `#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]`.
//!
//! A test ends while the service under test is still running, so its tasks are dropped with
//! the test's runtime: actix's runtime drops its `LocalSet` (where every actor and spawned task
//! lives) before the Tokio runtime, and outside any Tokio context. A task dropped in the middle
//! of a query holds a pooled database connection, and sqlx returns a dropped connection to its
//! pool by spawning onto the current runtime: with no runtime entered that panics ("this
//! functionality requires a Tokio context"), and a second such connection dropped while the
//! first panic unwinds aborts the test binary. [`TestRunner`] drops actix's runtime with its
//! Tokio runtime entered, so the returns are queued and then dropped with the runtime.

use std::future::Future;

/// Names the system for actix's test attribute, which calls `new()` on it.
pub struct TestSystem;

impl TestSystem {
    #[allow(clippy::new_ret_no_self)] // the attribute's contract: `<System>::new().block_on(..)`
    pub fn new() -> TestRunner {
        TestRunner {
            runner: Some(actix_rt::System::new()),
        }
    }
}

/// An actix `SystemRunner` that is dropped inside its Tokio runtime's context.
pub struct TestRunner {
    runner: Option<actix_rt::SystemRunner>,
}

impl TestRunner {
    pub fn block_on<F: Future>(&self, test: F) -> F::Output {
        self.runner
            .as_ref()
            .expect("the runner lives until dropped")
            .block_on(test)
    }
}

impl Drop for TestRunner {
    fn drop(&mut self) {
        if let Some(runner) = self.runner.take() {
            let handle = runner.runtime().tokio_runtime().handle().clone();
            let _entered = handle.enter();
            drop(runner);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::TestSystem;

    /// Records, when dropped, whether a Tokio runtime was entered (what sqlx needs).
    struct SeesTheRuntimeWhenDropped(Arc<AtomicBool>);

    impl Drop for SeesTheRuntimeWhenDropped {
        fn drop(&mut self) {
            let entered = tokio::runtime::Handle::try_current().is_ok();
            self.0.store(entered, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_still_running_when_the_test_ends_is_dropped_inside_the_runtime() {
        let entered = Arc::new(AtomicBool::new(false));
        let held = SeesTheRuntimeWhenDropped(entered.clone());
        TestSystem::new().block_on(async move {
            actix_rt::spawn(async move {
                let _held = held;
                std::future::pending::<()>().await;
            });
            actix_rt::task::yield_now().await;
        });
        assert!(entered.load(Ordering::SeqCst));
    }
}
