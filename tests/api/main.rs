//! safeguard's integration tests: one binary, each test a real server on 127.0.0.1:0 over a fresh
//! database, driven by the generated gRPC clients. Every test runs on SQLite and, when
//! `SAFEGUARD_TEST_POSTGRES_URL` is set (CI sets it), on PostgreSQL.

#![allow(clippy::unwrap_used)]

// Shared helpers: not every helper is used by every module.
#[allow(dead_code)]
mod harness;

mod audit;
mod auth;
mod cli;
mod console;
mod convert_props;
mod decision_log;
mod failclosed;
mod failover;
mod hardening;
mod operations;
mod overload;
mod oversight;
mod permissions;
mod recorder;
mod registry;
mod replicas;
mod replication;
mod saved_snapshot;
mod standby;
mod tls;
mod validation;
mod verifiable;
mod verification;
