//! Conformance suites, one per seed, written from the seed's text alone (`../shared/seeds/`):
//! each request as the seed documents it, against the real service.

mod seed_003;
mod seed_004;
