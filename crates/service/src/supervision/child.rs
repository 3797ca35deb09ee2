//! Starting an actor under the tree and restarting it in place.
//!
//! [`start_child`] does what `actix::Supervisor::start` does (the actor's context future runs
//! as one task; when the actor stops and someone still holds its address, the context is reset
//! and `Supervised::restarting` runs, then `started` again, with the same address and mailbox)
//! and two things it does not: a panic anywhere in the actor's poll (a handler, a future it
//! waits on) is caught and treated as a stop whose reason is the panic message, and every
//! restart is recorded in the child's node, which decides whether the child is parked or the
//! service gives up. A child retired on purpose ([`Child::retire`]) is not restarted.

use std::{
    any::Any,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{self, Poll},
};

use actix::{dev::ContextFut, prelude::*};

use super::tree::Child;

/// Makes the actor panic while handling it (fault injection, `POST /api/faults/panic`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectedPanic;

/// Starts `actor` under `child`'s node; see the module documentation.
pub fn start_child<A>(child: Child, actor: A) -> Addr<A>
where
    A: Actor<Context = Context<A>> + Supervised + Handler<InjectedPanic>,
{
    let context = Context::new();
    let address = context.address();
    let weak = address.downgrade();
    child.set_panic_trigger(Box::new(move || {
        weak.upgrade()
            .map(|actor| actor.do_send(InjectedPanic))
            .is_some()
    }));
    actix::spawn(Restarting {
        context: context.into_future(actor),
        child,
    });
    address
}

/// The actor's context future, restarted whenever it ends or panics.
struct Restarting<A>
where
    A: Actor<Context = Context<A>>,
{
    context: ContextFut<A, Context<A>>,
    child: Child,
}

impl<A> Future for Restarting<A>
where
    A: Actor<Context = Context<A>> + Supervised,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let polled = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.context).poll(cx)));
            let reason = match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(())) if this.child.is_retired() => {
                    this.child.remove();
                    return Poll::Ready(());
                }
                Ok(Poll::Ready(())) => this
                    .child
                    .take_stop_reason()
                    .unwrap_or_else(|| "stopped".to_owned()),
                Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
            };
            tracing::warn!(
                kind = this.child.kind().as_str(),
                id = %this.child.id(),
                reason,
                "restarting"
            );
            this.child.record_failure(&reason);
            // Resets the context and runs `restarting`; false when nobody holds the address any
            // more, so there is nobody to serve.
            if !this.context.restart() {
                this.child.remove();
                return Poll::Ready(());
            }
            this.child.running();
        }
    }
}

/// The text of a panic (`panic!("...")` carries a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Implements [`InjectedPanic`] for an actor: it panics while handling the message.
#[macro_export]
macro_rules! panics_on_request {
    ($actor:ty) => {
        impl ::actix::Handler<$crate::supervision::InjectedPanic> for $actor {
            type Result = ();
            fn handle(
                &mut self,
                _: $crate::supervision::InjectedPanic,
                _: &mut Self::Context,
            ) -> Self::Result {
                panic!("injected fault (POST /api/faults/panic)");
            }
        }
    };
}
