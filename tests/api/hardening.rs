//! Malformed input to every RPC: each is refused with INVALID_ARGUMENT naming exactly the offending
//! fields, and none of it writes anything. Oversize messages are refused before they are decoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost_types::{FieldMask, Timestamp};
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;

use crate::both;
use crate::harness::*;

/// One RPC call with its request.
enum Call {
    Create(pb::CreateSellerRequest),
    Update(pb::UpdateSellerRequest),
    Get(pb::GetSellerRequest),
    List(pb::ListSellersRequest),
    Submit(pb::SubmitAttestationRequest),
    Revoke(pb::RevokeAttestationRequest),
    Verify(pb::VerifySellerRequest),
    Batch(pb::BatchVerifySellersRequest),
}

impl Call {
    async fn send(self, app: &mut TestApp) -> Result<(), tonic::Status> {
        let (v, r) = (&mut app.verification, &mut app.registry);
        match self {
            Call::Create(q) => r.create_seller(q).await.map(drop),
            Call::Update(q) => r.update_seller(q).await.map(drop),
            Call::Get(q) => r.get_seller(q).await.map(drop),
            Call::List(q) => r.list_sellers(q).await.map(drop),
            Call::Submit(q) => r.submit_attestation(q).await.map(drop),
            Call::Revoke(q) => r.revoke_attestation(q).await.map(drop),
            Call::Verify(q) => v.verify_seller(q).await.map(drop),
            Call::Batch(q) => v.batch_verify_sellers(q).await.map(drop),
        }
    }
}

/// The seller every case runs beside: its registry revision must never move.
const ANCHOR: &str = "anchor";

fn long(n: usize) -> String {
    "x".repeat(n)
}

fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn create(s: pb::Seller) -> Call {
    Call::Create(pb::CreateSellerRequest { seller: Some(s), request_id: String::new() })
}

/// A fresh, otherwise valid seller with one defect applied.
fn fresh(defect: impl FnOnce(&mut pb::Seller)) -> Call {
    let mut s = seller("fresh");
    defect(&mut s);
    create(s)
}

/// An update of the anchor seller.
fn update(paths: &[&str], defect: impl FnOnce(&mut pb::Seller)) -> Call {
    let mut s = pb::Seller { seller_id: ANCHOR.into(), ..Default::default() };
    defect(&mut s);
    Call::Update(pb::UpdateSellerRequest {
        seller: Some(s),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        request_id: String::new(),
    })
}

/// A new, otherwise valid attestation of the anchor seller with one defect applied.
fn attest(defect: impl FnOnce(&mut pb::Attestation)) -> Call {
    let mut a = attestation(ANCHOR, 2);
    defect(&mut a);
    Call::Submit(pb::SubmitAttestationRequest { attestation: Some(a), request_id: String::new() })
}

fn good_verify() -> pb::VerifySellerRequest {
    verify(ANCHOR, P::OrderFulfillment, &[C::RecipientName])
}

fn check(defect: impl FnOnce(&mut pb::VerifySellerRequest)) -> Call {
    let mut q = good_verify();
    defect(&mut q);
    Call::Verify(q)
}

fn list(defect: impl FnOnce(&mut pb::ListSellersRequest)) -> Call {
    let mut q = pb::ListSellersRequest::default();
    defect(&mut q);
    Call::List(q)
}

fn revoke(attestation_id: &str, reason: &str, request_id: &str) -> Call {
    Call::Revoke(pb::RevokeAttestationRequest {
        attestation_id: attestation_id.into(),
        reason: reason.into(),
        request_id: request_id.into(),
    })
}

/// Every malformed request and the field paths its BadRequest must name (in any order).
fn cases(attestation_id: &str) -> Vec<(&'static str, Call, Vec<&'static str>)> {
    let page_token = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let all_categories: Vec<i32> = (1..=13).collect();
    vec![
        // CreateSeller
        ("CreateSeller without a seller", Call::Create(pb::CreateSellerRequest::default()), vec!["seller"]),
        (
            "CreateSeller with every field empty",
            create(pb::Seller::default()),
            vec![
                "seller.seller_id",
                "seller.legal_name",
                "seller.country",
                "seller.role",
                "seller.contact_email",
                "seller.privacy_contact",
            ],
        ),
        (
            "CreateSeller with a 10 000-char legal_name",
            fresh(|s| s.legal_name = long(10_000)),
            vec!["seller.legal_name"],
        ),
        ("CreateSeller with a blank legal_name", fresh(|s| s.legal_name = "   ".into()), vec!["seller.legal_name"]),
        ("CreateSeller with a 65-char seller_id", fresh(|s| s.seller_id = long(65)), vec!["seller.seller_id"]),
        (
            "CreateSeller with a seller_id outside the alphabet",
            fresh(|s| s.seller_id = "ac me/1".into()),
            vec!["seller.seller_id"],
        ),
        (
            "CreateSeller with a 200-char request_id",
            Call::Create(pb::CreateSellerRequest { seller: Some(seller("fresh")), request_id: long(200) }),
            vec!["request_id"],
        ),
        (
            "CreateSeller with unknown status and role numbers",
            fresh(|s| {
                s.status = 99;
                s.role = -3;
            }),
            vec!["seller.status", "seller.role"],
        ),
        (
            "CreateSeller with a NUL in privacy_contact",
            fresh(|s| s.privacy_contact = "a\0b".into()),
            vec!["seller.privacy_contact"],
        ),
        ("CreateSeller with a lower-case country", fresh(|s| s.country = "cn".into()), vec!["seller.country"]),
        ("CreateSeller with an unassigned country", fresh(|s| s.country = "XX".into()), vec!["seller.country"]),
        (
            "CreateSeller with an email without @",
            fresh(|s| s.contact_email = "legal.example".into()),
            vec!["seller.contact_email"],
        ),
        // UpdateSeller
        ("UpdateSeller with an empty update_mask", update(&[], |s| s.legal_name = "New".into()), vec!["update_mask"]),
        (
            "UpdateSeller without an update_mask",
            Call::Update(pb::UpdateSellerRequest {
                seller: Some(pb::Seller { seller_id: ANCHOR.into(), legal_name: "New".into(), ..Default::default() }),
                update_mask: None,
                request_id: String::new(),
            }),
            vec!["update_mask"],
        ),
        (
            "UpdateSeller without a seller",
            Call::Update(pb::UpdateSellerRequest {
                seller: None,
                update_mask: Some(FieldMask { paths: vec!["legal_name".into()] }),
                request_id: String::new(),
            }),
            vec!["seller"],
        ),
        (
            "UpdateSeller with an unknown mask path",
            update(&["legal_name", "etag"], |_| {}),
            vec!["update_mask.paths[1]"],
        ),
        (
            "UpdateSeller with a 10 000-char legal_name",
            update(&["legal_name"], |s| s.legal_name = long(10_000)),
            vec!["seller.legal_name"],
        ),
        ("UpdateSeller clearing the legal_name", update(&["legal_name"], |_| {}), vec!["seller.legal_name"]),
        ("UpdateSeller with status UNSPECIFIED", update(&["status"], |s| s.status = 0), vec!["seller.status"]),
        ("UpdateSeller with an unknown status number", update(&["status"], |s| s.status = 99), vec!["seller.status"]),
        ("UpdateSeller with an unknown role number", update(&["role"], |s| s.role = 9), vec!["seller.role"]),
        ("UpdateSeller with role UNSPECIFIED", update(&["role"], |s| s.role = 0), vec!["seller.role"]),
        (
            "UpdateSeller with a bad country",
            update(&["country"], |s| s.country = "Korea".into()),
            vec!["seller.country"],
        ),
        (
            "UpdateSeller with a 65-char seller_id",
            update(&["legal_name"], |s| s.seller_id = long(65)),
            vec!["seller.seller_id"],
        ),
        (
            "UpdateSeller with a 200-char request_id",
            Call::Update(pb::UpdateSellerRequest {
                seller: Some(pb::Seller { seller_id: ANCHOR.into(), legal_name: "New".into(), ..Default::default() }),
                update_mask: Some(FieldMask { paths: vec!["legal_name".into()] }),
                request_id: long(200),
            }),
            vec!["request_id"],
        ),
        // GetSeller
        ("GetSeller with an empty seller_id", Call::Get(pb::GetSellerRequest::default()), vec!["seller_id"]),
        (
            "GetSeller with a 65-char seller_id",
            Call::Get(pb::GetSellerRequest { seller_id: long(65) }),
            vec!["seller_id"],
        ),
        // ListSellers
        ("ListSellers with page_size 1001", list(|q| q.page_size = 1001), vec!["page_size"]),
        ("ListSellers with page_size i32::MAX", list(|q| q.page_size = i32::MAX), vec!["page_size"]),
        ("ListSellers with a negative page_size", list(|q| q.page_size = -1), vec!["page_size"]),
        (
            "ListSellers with a garbage page_token",
            list(|q| q.page_token = "%%%not-a-token%%%".into()),
            vec!["page_token"],
        ),
        (
            "ListSellers with a well-encoded page_token naming a bad seller id",
            list(|q| q.page_token = page_token(r#"{"after":"bad id","country":"","status":0}"#)),
            vec!["page_token"],
        ),
        ("ListSellers with a bad country", list(|q| q.country = "Korea".into()), vec!["country"]),
        ("ListSellers with an unknown status", list(|q| q.status = 42), vec!["status"]),
        // SubmitAttestation
        (
            "SubmitAttestation without an attestation",
            Call::Submit(pb::SubmitAttestationRequest::default()),
            vec!["attestation"],
        ),
        (
            "SubmitAttestation with a repeated clause",
            attest(|a| a.clauses.push(pb::Clause::PurposeLimitation as i32)),
            { vec!["attestation.clauses[13]"] },
        ),
        (
            "SubmitAttestation with a repeated category",
            attest(|a| a.categories = vec![C::RecipientName as i32, C::PhoneNumber as i32, C::RecipientName as i32]),
            vec!["attestation.categories[2]"],
        ),
        (
            "SubmitAttestation with a repeated purpose",
            attest(|a| a.purposes = vec![P::OrderFulfillment as i32, P::OrderFulfillment as i32]),
            vec!["attestation.purposes[1]"],
        ),
        (
            "SubmitAttestation with an unknown purpose number",
            attest(|a| a.purposes.push(99)),
            vec!["attestation.purposes[2]"],
        ),
        (
            "SubmitAttestation with an UNSPECIFIED category",
            attest(|a| a.categories.insert(0, 0)),
            vec!["attestation.categories[0]"],
        ),
        (
            "SubmitAttestation with a negative clause number",
            attest(|a| a.clauses[0] = -1),
            vec!["attestation.clauses[0]"],
        ),
        ("SubmitAttestation with 15 clauses", attest(|a| a.clauses = (1..=15).collect()), vec!["attestation.clauses"]),
        (
            "SubmitAttestation with empty lists",
            attest(|a| {
                a.clauses.clear();
                a.purposes.clear();
                a.categories.clear();
            }),
            vec!["attestation.clauses", "attestation.purposes", "attestation.categories"],
        ),
        (
            "SubmitAttestation with signed_time seconds = i64::MAX",
            attest(|a| a.signed_time = ts(i64::MAX, 0)),
            vec!["attestation.signed_time"],
        ),
        (
            "SubmitAttestation with signed_time seconds = i64::MIN",
            attest(|a| a.signed_time = ts(i64::MIN, 0)),
            vec!["attestation.signed_time"],
        ),
        ("SubmitAttestation with effective_time nanos = -1", attest(|a| a.effective_time = ts(1_700_000_000, -1)), {
            vec!["attestation.effective_time"]
        }),
        (
            "SubmitAttestation with effective_time nanos = 1e9",
            attest(|a| a.effective_time = ts(1_700_000_000, 1_000_000_000)),
            vec!["attestation.effective_time"],
        ),
        (
            "SubmitAttestation with expire_time in year 10000",
            attest(|a| a.expire_time = ts(253_402_300_800, 0)),
            vec!["attestation.expire_time"],
        ),
        ("SubmitAttestation without expire_time", attest(|a| a.expire_time = None), vec!["attestation.expire_time"]),
        (
            "SubmitAttestation without any time",
            attest(|a| {
                a.signed_time = None;
                a.effective_time = None;
                a.expire_time = None;
            }),
            vec!["attestation.signed_time", "attestation.effective_time", "attestation.expire_time"],
        ),
        (
            "SubmitAttestation expiring when it takes effect",
            attest(|a| a.expire_time = a.effective_time),
            vec!["attestation.expire_time"],
        ),
        (
            "SubmitAttestation with a short document_sha256",
            attest(|a| a.document_sha256 = "abc".into()),
            vec!["attestation.document_sha256"],
        ),
        (
            "SubmitAttestation with a non-hex document_sha256",
            attest(|a| a.document_sha256 = "g".repeat(64)),
            vec!["attestation.document_sha256"],
        ),
        (
            "SubmitAttestation with a 10 000-char contract_ref",
            attest(|a| a.contract_ref = long(10_000)),
            vec!["attestation.contract_ref"],
        ),
        (
            "SubmitAttestation with a 10 000-char signatory",
            attest(|a| a.signatory = long(10_000)),
            vec!["attestation.signatory"],
        ),
        (
            "SubmitAttestation with retention_days 40 000",
            attest(|a| a.retention_days = 40_000),
            vec!["attestation.retention_days"],
        ),
        (
            "SubmitAttestation with a 65-char seller_id",
            attest(|a| a.seller_id = long(65)),
            vec!["attestation.seller_id"],
        ),
        (
            "SubmitAttestation with a 200-char request_id",
            Call::Submit(pb::SubmitAttestationRequest {
                attestation: Some(attestation(ANCHOR, 2)),
                request_id: long(200),
            }),
            vec!["request_id"],
        ),
        // RevokeAttestation
        ("RevokeAttestation with nothing set", revoke("", "", ""), vec!["attestation_id", "reason"]),
        ("RevokeAttestation with a 65-char attestation_id", revoke(&long(65), "ended", ""), vec!["attestation_id"]),
        ("RevokeAttestation with a 2 000-char reason", revoke(attestation_id, &long(2_000), ""), vec!["reason"]),
        (
            "RevokeAttestation with a control character in the reason",
            revoke(attestation_id, "end\x07ed", ""),
            vec!["reason"],
        ),
        (
            "RevokeAttestation with a 200-char request_id",
            revoke(attestation_id, "ended", &long(200)),
            vec!["request_id"],
        ),
        // VerifySeller
        (
            "VerifySeller with nothing set",
            Call::Verify(pb::VerifySellerRequest::default()),
            vec!["seller_id", "categories", "purpose"],
        ),
        ("VerifySeller with a 65-char seller_id", check(|q| q.seller_id = long(65)), vec!["seller_id"]),
        ("VerifySeller with a repeated category", check(|q| q.categories = vec![1, 1]), vec!["categories[1]"]),
        ("VerifySeller with an unknown category number", check(|q| q.categories = vec![1, 99]), vec!["categories[1]"]),
        ("VerifySeller with an UNSPECIFIED category", check(|q| q.categories = vec![0]), vec!["categories[0]"]),
        ("VerifySeller with 14 categories", check(|q| q.categories = [all_categories.clone(), vec![1]].concat()), {
            vec!["categories"]
        }),
        ("VerifySeller with an unknown purpose number", check(|q| q.purpose = 42), vec!["purpose"]),
        ("VerifySeller with an unknown basis number", check(|q| q.basis = 99), vec!["basis"]),
        (
            "VerifySeller with a 10 000-char basis_evidence_ref",
            check(|q| q.basis_evidence_ref = long(10_000)),
            vec!["basis_evidence_ref"],
        ),
        ("VerifySeller with a negative min_revision", check(|q| q.min_revision = -1), vec!["min_revision"]),
        // BatchVerifySellers
        (
            "BatchVerifySellers with no requests",
            Call::Batch(pb::BatchVerifySellersRequest::default()),
            vec!["requests"],
        ),
        (
            "BatchVerifySellers with 101 requests",
            Call::Batch(pb::BatchVerifySellersRequest { requests: vec![good_verify(); 101] }),
            vec!["requests"],
        ),
        (
            "BatchVerifySellers with bad items at 3 and 5",
            Call::Batch(pb::BatchVerifySellersRequest {
                requests: (0..6)
                    .map(|i| {
                        let mut q = good_verify();
                        if i == 3 {
                            q.seller_id = String::new();
                        }
                        if i == 5 {
                            q.purpose = 0;
                            q.categories = vec![2, 2];
                        }
                        q
                    })
                    .collect(),
            }),
            vec!["requests[3].seller_id", "requests[5].purpose", "requests[5].categories[1]"],
        ),
    ]
}

async fn revision_of_anchor(app: &mut TestApp) -> i64 {
    app.registry.get_seller(pb::GetSellerRequest { seller_id: ANCHOR.into() }).await.unwrap().into_inner().revision
}

both!(malformed_requests_to_every_rpc_name_their_fields_and_write_nothing, |mut app: TestApp| async move {
    app.create_seller(seller(ANCHOR)).await;
    let (att, _) = app.attest(attestation(ANCHOR, 1)).await;
    let before = revision_of_anchor(&mut app).await;
    assert_eq!(before, 2);

    let mut rows = Vec::new();
    let mut failures = 0;
    // Compared case by case, so that one leaking write does not blame every case after it.
    let mut last = before;
    for (what, call, expected) in cases(&att.attestation_id) {
        let result = call.send(&mut app).await;
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        let verdict = match &result {
            Ok(()) => Err("accepted".to_owned()),
            Err(s) if s.code() != tonic::Code::InvalidArgument => Err(format!("{:?}: {}", s.code(), s.message())),
            Err(s) => {
                let mut got = violated_fields(s);
                got.sort();
                if got == expected { Ok(()) } else { Err(format!("fields {got:?}, expected {expected:?}")) }
            }
        };
        let after = revision_of_anchor(&mut app).await;
        let verdict = verdict.and_then(|()| {
            if after == last { Ok(()) } else { Err(format!("registry moved from revision {last} to {after}")) }
        });
        last = after;
        if verdict.is_err() {
            failures += 1;
        }
        rows.push(format!(
            "  {:<4} {what:<66} {}",
            if verdict.is_ok() { "ok" } else { "FAIL" },
            match verdict {
                Ok(()) => String::new(),
                Err(e) => e,
            }
        ));
    }
    assert_eq!(failures, 0, "{failures} malformed requests were not refused as they should be:\n{}", rows.join("\n"));

    assert_eq!(last, before);
    // Nothing reached the snapshot either, and the anchor is as it was created.
    let r = app.verify_at(good_verify(), before).await;
    assert_eq!(r.revision, before);
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: ANCHOR.into() }).await.unwrap().into_inner();
    assert_eq!(got.seller.unwrap().legal_name, seller(ANCHOR).legal_name);
    assert_eq!(got.attestations.len(), 1);
    let listed = app.registry.list_sellers(pb::ListSellersRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.sellers.len(), 1, "no other seller was created");
    app
});

both!(malformed_import_items_are_reported_by_index_and_import_nothing, |mut app: TestApp| async move {
    use pb::import_sellers_request::Item;
    app.create_seller(seller(ANCHOR)).await;
    let before = revision_of_anchor(&mut app).await;
    let mut long_name = seller("imp-a");
    long_name.legal_name = long(10_000);
    let mut repeated = attestation(ANCHOR, 9);
    repeated.clauses.push(pb::Clause::PurposeLimitation as i32);
    let mut bad_time = attestation(ANCHOR, 10);
    bad_time.signed_time = ts(i64::MAX, -1);
    let mut bad_id = seller("imp-b");
    bad_id.seller_id = long(65);
    let items = vec![
        pb::ImportSellersRequest { item: None },
        pb::ImportSellersRequest { item: Some(Item::Seller(long_name)) },
        pb::ImportSellersRequest { item: Some(Item::Attestation(repeated)) },
        pb::ImportSellersRequest { item: Some(Item::Attestation(bad_time)) },
        pb::ImportSellersRequest { item: Some(Item::Seller(bad_id)) },
    ];
    let r = app.registry.import_sellers(tokio_stream::iter(items)).await.unwrap().into_inner();
    let errors: Vec<_> = r.errors.iter().map(|e| (e.index, e.field.as_str())).collect();
    assert_eq!(
        errors,
        vec![
            (0, "item"),
            (1, "seller.legal_name"),
            (2, "attestation.clauses[13]"),
            (3, "attestation.signed_time"),
            (4, "seller.seller_id"),
        ]
    );
    assert_eq!(
        (r.sellers_created, r.sellers_updated, r.sellers_unchanged, r.attestations_created, r.attestations_unchanged),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(r.revision, before);
    assert_eq!(revision_of_anchor(&mut app).await, before);
    app
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_max_message_bytes_is_refused_and_writes_nothing() {
    const LIMIT: usize = 64 * 1024;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let mut settings = test_settings(&db);
        settings.server.max_message_bytes = LIMIT;
        let mut app = TestApp::spawn_with(db, settings).await;
        app.create_seller(seller(ANCHOR)).await;
        let before = revision_of_anchor(&mut app).await;
        let too_big = |code: tonic::Code| matches!(code, tonic::Code::ResourceExhausted | tonic::Code::OutOfRange);

        // Just under the limit, the message is decoded and then refused by validation.
        let mut s = seller("big");
        s.legal_name = long(LIMIT - 1024);
        let err = app
            .registry
            .create_seller(pb::CreateSellerRequest { seller: Some(s.clone()), request_id: String::new() })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), vec!["seller.legal_name"], "{backend:?}");

        // Over it, the message is refused before it is decoded.
        s.legal_name = long(LIMIT + 1);
        let err = app
            .registry
            .create_seller(pb::CreateSellerRequest { seller: Some(s), request_id: String::new() })
            .await
            .unwrap_err();
        assert!(too_big(err.code()), "{backend:?}: {err:?}");

        let mut a = attestation(ANCHOR, 1);
        a.contract_ref = long(LIMIT * 2);
        let err = app
            .registry
            .submit_attestation(pb::SubmitAttestationRequest { attestation: Some(a), request_id: String::new() })
            .await
            .unwrap_err();
        assert!(too_big(err.code()), "{backend:?}: {err:?}");

        // A stream whose second item is too big: the first, valid, item must not be imported alone.
        use pb::import_sellers_request::Item;
        let mut huge = seller("imp-huge");
        huge.privacy_contact = long(LIMIT * 2);
        let items = vec![
            pb::ImportSellersRequest { item: Some(Item::Seller(seller("imp-small"))) },
            pb::ImportSellersRequest { item: Some(Item::Seller(huge)) },
        ];
        let err = app.registry.import_sellers(tokio_stream::iter(items)).await.unwrap_err();
        assert!(too_big(err.code()), "{backend:?}: {err:?}");

        let batch = pb::BatchVerifySellersRequest {
            requests: (0..100)
                .map(|_| {
                    let mut q = good_verify();
                    q.basis_evidence_ref = long(1_000);
                    q
                })
                .collect(),
        };
        let err = app.verification.batch_verify_sellers(batch).await.unwrap_err();
        assert!(too_big(err.code()), "{backend:?}: {err:?}");

        assert_eq!(revision_of_anchor(&mut app).await, before, "{backend:?}: something was written");
        let listed = app.registry.list_sellers(pb::ListSellersRequest::default()).await.unwrap().into_inner();
        let ids: Vec<_> = listed.sellers.into_iter().map(|s| s.seller_id).collect();
        assert_eq!(ids, vec![ANCHOR], "{backend:?}");
        app.stop().await;
    }
}
