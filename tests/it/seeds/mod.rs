//! Conformance suites for the seed systems' clients, one module per seed, each written from the
//! seed's text alone (`../shared/seeds/`): every request as the seed documents it, against the
//! real service, with assertions on the answers.

mod seed_001;
mod seed_002;
mod seed_003;
mod seed_004;
