//! hedge-store's integration tests: one conformance suite (`conformance`) run against every backend, plus
//! backend-specific tests (crash safety of the SQLite file, the PostgreSQL test server).

#[macro_use]
mod conformance;
mod postgres;
mod sqlite;
