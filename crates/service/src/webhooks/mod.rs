//! Webhook delivery: Standard Webhooks signatures, a durable outbox, retries on a schedule.

pub mod address;
pub mod dispatcher;
pub mod endpoints;
