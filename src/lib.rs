//! safeguard decides, at checkout speed, whether a buyer's personal data may be shared with a
//! foreign seller, and keeps the tamper-evident registry of sellers and their data-protection
//! contracts that the decision rests on.
//!
//! # Layout
//! - [`domain`]: plain types and the pure decision engine (no gRPC, no database).
//! - [`store`]: the only module that speaks sea-orm: current state plus the hash-chained event log.
//! - [`snapshot`]: the in-memory registry VerifySeller reads, the task that follows the log, and
//!   the signed file it is saved to so that a restart folds only the tail of the log.
//! - [`grpc`]: thin adapters between the proto contract and the domain.
//! - [`audit`]: auditors' checks (decision replay, kept checkpoints) that gRPC and the console share.
//! - [`auth`]: who is calling and what they may do.
//! - [`tlog`]: signed checkpoints of the registry's Merkle tree, and the watch that it only grows.
//! - [`console`]: web pages for legal and auditors, and the public recipient register.
//! - [`startup`]: [`startup::App`] builds the whole service; `main.rs` only parses the command line.
//! - [`overload`]: the request timeout, concurrency limit and load shedding, counted by code.
//! - [`config`], [`error`], [`pb`]: settings, the one error type, the generated code.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod overload;
pub mod pb;
pub mod recorder;
pub mod snapshot;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tlog;
