//! The supervision tree: every actor of the service runs under it, as OTP's one_for_one
//! supervisors run their children.
//!
//! - [`tree`]: the registry of children (kind, id, state, restarts, last reason), the restart
//!   intensity of each, what happens when it is exceeded, and the JSON view of
//!   `GET /api/supervision`.
//! - [`child`]: [`child::start_child`] starts an actor under its node and restarts it in place
//!   when it stops or panics, so its address stays valid for everyone who holds it. actix's own
//!   `Supervisor` restarts a child that stops, but a panic kills the actor and its supervisor
//!   together; here the panic is caught around the actor's poll (every handler and every future
//!   it runs) and turned into a restart with the panic message as the reason.
//! - [`worker`]: an actor that owns tasks running on the runtime's threads (the webhook
//!   dispatcher, the bot, the WebSocket fan-out): the single actor thread never does their work,
//!   and a task that panics restarts the worker, which starts the tasks again.
//!
//! What a child does when restarted is its own: an account reconnects with backoff, a tracked
//! person reloads its gap-rule state from the database, storage and channels keep their
//! buffers (the actor value survives a restart in place), a worker starts its tasks again.

pub mod child;
pub mod tree;
pub mod worker;

pub use child::{InjectedPanic, start_child};
pub use tree::{Child, ChildKind, ChildState, Escalation, NodeView, Supervision};
