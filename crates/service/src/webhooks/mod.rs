//! Webhook delivery: a durable outbox, retries on a schedule, Standard Webhooks signatures.
//!
//! - [`endpoints`]: the endpoints (API and `[webhooks]` in config.toml), their secrets.
//! - [`address`]: which URLs may be called (no loopback, private or link-local addresses unless
//!   allowed), checked again at delivery.
//! - [`dispatcher`]: claims due messages, sends them signed, records every attempt.
//!
//! The pure rules (the retry schedule, the signatures) are `tgwatch_core::retry` and
//! `tgwatch_core::signing`.

pub mod address;
pub mod dispatcher;
pub mod endpoints;
