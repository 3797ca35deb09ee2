//! Webhook delivery: Standard Webhooks signatures, a durable outbox, retries on a schedule.

pub mod address;
pub mod dispatcher;
pub mod endpoints;
pub mod retry;
pub mod signing;
