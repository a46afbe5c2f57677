//! How checkout (and legal) call safeguard: register a seller, attest its contract, then ask
//! VerifySeller with the write's revision so the answer reflects the write on any replica.
//!
//! Start a server (`cargo run -- serve`), then: `cargo run --example checkout -- http://127.0.0.1:50051`.
//! With authentication on, pass a token with the legal and checkout roles in SAFEGUARD_TOKEN
//! (`safeguard token --role legal --role checkout --sub demo`).

#![allow(clippy::unwrap_used)]

use safeguard::pb::v1 as pb;
use safeguard::pb::v1::registry_service_client::RegistryServiceClient;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use tonic::Request;
use tonic::metadata::MetadataValue;

fn authorized<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(token) = std::env::var("SAFEGUARD_TOKEN") {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    // Checkout should always set a deadline: safeguard answers from memory in well under a millisecond.
    request.set_timeout(std::time::Duration::from_millis(500));
    request
}

fn ts(days_from_now: i64) -> Option<prost_types::Timestamp> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    Some(prost_types::Timestamp { seconds: now + days_from_now * 86_400, nanos: 0 })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let mut registry = RegistryServiceClient::connect(addr.clone()).await?;
    let mut verification = VerificationServiceClient::connect(addr).await?;

    let seller = pb::Seller {
        seller_id: "example-shop".into(),
        legal_name: "Example Shop Ltd.".into(),
        country: "CN".into(),
        role: pb::SellerRole::Recipient as i32,
        contact_email: "legal@example-shop.example".into(),
        privacy_contact: "privacy@example-shop.example".into(),
        ..Default::default()
    };
    // request_id makes the write safe to retry: it is applied once.
    match registry
        .create_seller(authorized(pb::CreateSellerRequest {
            seller: Some(seller),
            request_id: "example-create".into(),
        }))
        .await
    {
        Ok(r) => println!("seller registered at revision {}", r.into_inner().revision),
        Err(s) if s.code() == tonic::Code::AlreadyExists => println!("seller already registered"),
        Err(s) => return Err(s.into()),
    }

    use pb::Clause::*;
    let clauses = [
        PurposeLimitation,
        DataMinimization,
        SecuritySafeguards,
        RetentionAndDeletion,
        OnwardTransferRestriction,
        BreachNotification,
        GrievanceAndDisputeResolution,
        DataSubjectRights,
        SupervisionAndAudit,
        LiabilityAndCompensation,
        SuspensionAndTermination,
        PipaComplianceUndertaking,
    ];
    use pb::DataCategory::*;
    let attestation = pb::Attestation {
        seller_id: "example-shop".into(),
        contract_ref: "DPA-2026-0001".into(),
        document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        clauses: clauses.iter().map(|c| *c as i32).collect(),
        purposes: vec![pb::Purpose::OrderFulfillment as i32],
        categories: [RecipientName, PhoneNumber, ShippingAddress, OrderContents].iter().map(|c| *c as i32).collect(),
        signed_time: ts(-3),
        effective_time: ts(-1),
        expire_time: ts(365),
        signatory: "Jane Kim, Head of Legal".into(),
        retention_days: 90,
        ..Default::default()
    };
    let revision = match registry
        .submit_attestation(authorized(pb::SubmitAttestationRequest {
            attestation: Some(attestation),
            request_id: "example-attest".into(),
        }))
        .await
    {
        Ok(r) => r.into_inner().revision,
        Err(s) if s.code() == tonic::Code::AlreadyExists => 0,
        Err(s) => return Err(s.into()),
    };

    let answer = verification
        .verify_seller(authorized(pb::VerifySellerRequest {
            seller_id: "example-shop".into(),
            categories: [RecipientName, PhoneNumber, CustomsCode].iter().map(|c| *c as i32).collect(),
            purpose: pb::Purpose::OrderFulfillment as i32,
            basis: pb::TransferBasis::SeparateConsent as i32,
            basis_evidence_ref: "consent-7781".into(),
            min_revision: revision,
        }))
        .await?
        .into_inner();
    println!("decision {:?} ({})", answer.decision(), answer.decision_id);
    for c in &answer.allowed_categories {
        println!("  may send {:?}", pb::DataCategory::try_from(*c).unwrap_or_default());
    }
    for d in &answer.denied_categories {
        let why: Vec<_> = d.reasons.iter().map(|r| format!("{:?}", r.code())).collect();
        println!("  must not send {:?}: {}", d.category(), why.join(", "));
    }
    if let Some(x) = &answer.disclosure {
        println!(
            "  tell the buyer: {} ({}), {}, kept {} days",
            x.recipient_legal_name, x.country, x.recipient_contact, x.retention_days
        );
    }
    Ok(())
}
