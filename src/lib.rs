//! safeguard decides, at checkout speed, whether a buyer's personal data may be shared with a
//! foreign seller, and keeps the tamper-evident registry of sellers and their data-protection
//! contracts that the decision rests on.
//!
//! # Layout
//! - [`domain`]: plain types and the pure decision engine (no gRPC, no database).
pub mod domain;
