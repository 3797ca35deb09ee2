//! Conformance suites for the seed systems' clients, one module per seed, each written from the
//! seed's text alone: every request as the seed documents it, with assertions on the answers.

mod seed_001;
mod seed_002;
