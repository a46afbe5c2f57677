//! The permission table: every RPC of VerificationService, RegistryService and AuditService, for
//! every kind of caller, with the outcome the rules of DESIGN.md give it, driven through the real
//! server. The rules: checkout → VerificationService only; legal → RegistryService reads and
//! writes; auditor → RegistryService reads and AuditService; admin → everything; a genuine token
//! with no known role → PERMISSION_DENIED everywhere; no token → UNAUTHENTICATED everywhere.

use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::both;
use crate::harness::*;

/// Every RPC of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    VerifySeller,
    BatchVerifySellers,
    CreateSeller,
    UpdateSeller,
    GetSeller,
    ListSellers,
    SubmitAttestation,
    RevokeAttestation,
    ImportSellers,
    CreateSuspensionOrder,
    LiftSuspensionOrder,
    ListSuspensionOrders,
    RecordSupervision,
    ListRegistryEvents,
    GetSellerHistory,
    GetSellerAsOf,
    VerifyAuditChain,
    ExplainDecision,
    ListDecisions,
    GetDecision,
    GetComplianceReport,
    ExportRecipientRegister,
    GetCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
}

/// What the auth rules make of a call. "Allowed" is any answer but PERMISSION_DENIED and
/// UNAUTHENTICATED: an empty request is often INVALID_ARGUMENT, which proves it got past
/// authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    Unauthenticated,
}

use Outcome::{Allowed as A, Denied as D, Unauthenticated as U};

/// The callers, in the order of the table's columns.
const CALLERS: [&str; 6] = ["checkout", "legal", "auditor", "admin", "no known role", "no token"];

/// The table. Columns: checkout, legal, auditor, admin, a genuine token with no known role, no token.
const TABLE: [(Rpc, [Outcome; 6]); 25] = [
    // VerificationService: checkout (and admin).
    (Rpc::VerifySeller, [A, D, D, A, D, U]),
    (Rpc::BatchVerifySellers, [A, D, D, A, D, U]),
    // RegistryService writes: legal (and admin).
    (Rpc::CreateSeller, [D, A, D, A, D, U]),
    (Rpc::UpdateSeller, [D, A, D, A, D, U]),
    (Rpc::SubmitAttestation, [D, A, D, A, D, U]),
    (Rpc::RevokeAttestation, [D, A, D, A, D, U]),
    (Rpc::ImportSellers, [D, A, D, A, D, U]),
    (Rpc::CreateSuspensionOrder, [D, A, D, A, D, U]),
    (Rpc::LiftSuspensionOrder, [D, A, D, A, D, U]),
    (Rpc::RecordSupervision, [D, A, D, A, D, U]),
    // RegistryService reads: legal and auditors (and admin).
    (Rpc::GetSeller, [D, A, A, A, D, U]),
    (Rpc::ListSellers, [D, A, A, A, D, U]),
    (Rpc::ListSuspensionOrders, [D, A, A, A, D, U]),
    // AuditService: auditors (and admin).
    (Rpc::ListRegistryEvents, [D, D, A, A, D, U]),
    (Rpc::GetSellerHistory, [D, D, A, A, D, U]),
    (Rpc::GetSellerAsOf, [D, D, A, A, D, U]),
    (Rpc::VerifyAuditChain, [D, D, A, A, D, U]),
    (Rpc::ExplainDecision, [D, D, A, A, D, U]),
    (Rpc::ListDecisions, [D, D, A, A, D, U]),
    (Rpc::GetDecision, [D, D, A, A, D, U]),
    (Rpc::GetComplianceReport, [D, D, A, A, D, U]),
    (Rpc::ExportRecipientRegister, [D, D, A, A, D, U]),
    (Rpc::GetCheckpoint, [D, D, A, A, D, U]),
    (Rpc::GetInclusionProof, [D, D, A, A, D, U]),
    (Rpc::GetConsistencyProof, [D, D, A, A, D, U]),
];

/// Calls `rpc` as the bearer of `token` with an empty request (an empty stream for ImportSellers):
/// nothing valid enough to write is ever sent, so one caller's call cannot change another's.
async fn call(app: &TestApp, token: Option<&str>, rpc: Rpc) -> Result<(), tonic::Status> {
    let (mut v, mut r) = app.clients_as(token);
    let mut a = app.audit_as(token);
    match rpc {
        Rpc::VerifySeller => v.verify_seller(pb::VerifySellerRequest::default()).await.map(drop),
        Rpc::BatchVerifySellers => v.batch_verify_sellers(pb::BatchVerifySellersRequest::default()).await.map(drop),
        Rpc::CreateSeller => r.create_seller(pb::CreateSellerRequest::default()).await.map(drop),
        Rpc::UpdateSeller => r.update_seller(pb::UpdateSellerRequest::default()).await.map(drop),
        Rpc::GetSeller => r.get_seller(pb::GetSellerRequest::default()).await.map(drop),
        Rpc::ListSellers => r.list_sellers(pb::ListSellersRequest::default()).await.map(drop),
        Rpc::SubmitAttestation => r.submit_attestation(pb::SubmitAttestationRequest::default()).await.map(drop),
        Rpc::RevokeAttestation => r.revoke_attestation(pb::RevokeAttestationRequest::default()).await.map(drop),
        Rpc::ImportSellers => {
            r.import_sellers(tokio_stream::iter(Vec::<pb::ImportSellersRequest>::new())).await.map(drop)
        }
        Rpc::CreateSuspensionOrder => {
            r.create_suspension_order(pb::CreateSuspensionOrderRequest::default()).await.map(drop)
        }
        Rpc::LiftSuspensionOrder => r.lift_suspension_order(pb::LiftSuspensionOrderRequest::default()).await.map(drop),
        Rpc::ListSuspensionOrders => {
            r.list_suspension_orders(pb::ListSuspensionOrdersRequest::default()).await.map(drop)
        }
        Rpc::RecordSupervision => r.record_supervision(pb::RecordSupervisionRequest::default()).await.map(drop),
        Rpc::ListRegistryEvents => a.list_registry_events(pb::ListRegistryEventsRequest::default()).await.map(drop),
        Rpc::GetSellerHistory => a.get_seller_history(pb::GetSellerHistoryRequest::default()).await.map(drop),
        Rpc::GetSellerAsOf => a.get_seller_as_of(pb::GetSellerAsOfRequest::default()).await.map(drop),
        Rpc::VerifyAuditChain => a.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.map(drop),
        Rpc::ExplainDecision => a.explain_decision(pb::ExplainDecisionRequest::default()).await.map(drop),
        Rpc::ListDecisions => a.list_decisions(pb::ListDecisionsRequest::default()).await.map(drop),
        Rpc::GetDecision => a.get_decision(pb::GetDecisionRequest::default()).await.map(drop),
        Rpc::GetComplianceReport => a.get_compliance_report(pb::GetComplianceReportRequest::default()).await.map(drop),
        Rpc::GetCheckpoint => a.get_checkpoint(pb::GetCheckpointRequest::default()).await.map(drop),
        Rpc::GetInclusionProof => a.get_inclusion_proof(pb::GetInclusionProofRequest::default()).await.map(drop),
        Rpc::GetConsistencyProof => a.get_consistency_proof(pb::GetConsistencyProofRequest::default()).await.map(drop),
        Rpc::ExportRecipientRegister => {
            // A server stream: an error may come with the headers or as the first message.
            let mut stream = a.export_recipient_register(pb::ExportRecipientRegisterRequest::default()).await?;
            stream.get_mut().message().await.map(drop)
        }
    }
}

/// The token each column presents.
fn tokens() -> [Option<String>; 6] {
    let no_known_role = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "mallory", "exp": jsonwebtoken::get_current_timestamp() + 3600, "roles": ["superuser"] }),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    [
        Some(token("checkout", &[Role::Checkout])),
        Some(token("legal", &[Role::Legal])),
        Some(token("auditor", &[Role::Auditor])),
        Some(token("admin", &[Role::Admin])),
        Some(no_known_role),
        None,
    ]
}

both!(every_rpc_answers_every_caller_as_the_permission_table_says, |app: TestApp| async move {
    let tokens = tokens();
    let mut report = format!("{:<24}", "rpc");
    for caller in CALLERS {
        report.push_str(&format!(" {caller:<26}"));
    }
    report.push('\n');
    let mut wrong = 0;
    for (rpc, expected) in TABLE {
        report.push_str(&format!("{:<24}", format!("{rpc:?}")));
        for (token, want) in tokens.iter().zip(expected) {
            let result = call(&app, token.as_deref(), rpc).await;
            let code = result.as_ref().err().map_or(Code::Ok, tonic::Status::code);
            let got = match code {
                Code::PermissionDenied => D,
                Code::Unauthenticated => U,
                _ => A,
            };
            let cell = if got == want {
                format!("{got:?}({code:?})")
            } else {
                wrong += 1;
                format!("!{got:?}({code:?})≠{want:?}")
            };
            report.push_str(&format!(" {cell:<26}"));
        }
        report.push('\n');
    }
    assert_eq!(wrong, 0, "{wrong} cells differ from the permission table (marked !got≠expected):\n{report}");
    app
});

#[test]
fn the_permission_table_lists_every_rpc_of_the_three_services_once() {
    use std::collections::BTreeSet;
    let listed: BTreeSet<String> = TABLE.iter().map(|(rpc, _)| format!("{rpc:?}")).collect();
    assert_eq!(listed.len(), TABLE.len(), "an RPC is listed twice");
    let proto_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/safeguard/v1");
    let mut declared = BTreeSet::new();
    for file in ["verification.proto", "registry.proto", "audit.proto"] {
        let text = std::fs::read_to_string(proto_dir.join(file)).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("rpc ") {
                declared.insert(rest.split('(').next().unwrap().trim().to_owned());
            }
        }
    }
    assert_eq!(listed, declared, "the table and the proto services disagree");
}
