//! Plain types and pure logic: identifiers, the registry's entities, the policy and the decision
//! engine. Nothing here knows about gRPC or the database.

pub mod chain;
pub mod fold;
pub mod ids;
pub mod input;
pub mod invalid;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof_file;
pub mod record;
pub mod registry;
pub mod replay;
pub mod verify;
pub mod vocab;

pub use ids::{Country, DocumentSha256, SellerId, Timestamp};
pub use invalid::{Violation, Violations};
pub use policy::Policy;
pub use vocab::{
    AttestationState, Clause, DataCategory, Decision, Purpose, ReasonCode, SellerRole, SellerStatus, Set,
    SupervisionKind, TransferBasis, Vocab,
};
