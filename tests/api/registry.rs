//! RegistryService through the public API: writes, reads, idempotency, validation, the event log.

use safeguard::domain::chain::{EventFields, GENESIS_HASH, event_hash};
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::store::Store;

use crate::both;
use crate::harness::*;

async fn store_of(app: &TestApp) -> Store {
    app.db.store().await
}

both!(created_seller_reads_back_with_its_attestations, |mut app: TestApp| async move {
    let r = app
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("acme")), request_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let created = r.seller.unwrap();
    assert_eq!(created.revision, r.revision);
    assert!(!created.etag.is_empty());
    let (att, _) = app.attest(attestation("acme", 7)).await;
    assert!(!att.attestation_id.is_empty());
    assert_eq!(att.state(), pb::AttestationState::Active);
    assert_eq!(att.submitted_by, "test-admin");
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(got.seller.unwrap().legal_name, "acme Trading Co., Ltd.");
    assert_eq!(got.attestations.len(), 1);
    assert_eq!(got.attestations[0].document_sha256, "07".repeat(32));
    assert_eq!(got.attestations[0].clauses, attestation("acme", 7).clauses);
    let err = app.registry.get_seller(pb::GetSellerRequest { seller_id: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = app
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("acme")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = app
        .registry
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("acme", 7)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = app
        .registry
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("ghost", 8)),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    app
});

both!(list_sellers_filters_and_pages_in_stable_order, |mut app: TestApp| async move {
    for i in 0..7 {
        let mut s = seller(&format!("s{i}"));
        if i % 2 == 1 {
            s.country = "US".into();
        }
        app.create_seller(s).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .registry
            .list_sellers(pb::ListSellersRequest { country: "CN".into(), status: 0, page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        assert!(page.sellers.len() <= 2);
        seen.extend(page.sellers.into_iter().map(|s| s.seller_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, vec!["s0", "s2", "s4", "s6"]);
    // A token is bound to its filters.
    let first = app
        .registry
        .list_sellers(pb::ListSellersRequest {
            country: "CN".into(),
            status: 0,
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let err = app
        .registry
        .list_sellers(pb::ListSellersRequest {
            country: "US".into(),
            status: 0,
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), vec!["page_token"]);
    let err =
        app.registry.list_sellers(pb::ListSellersRequest { page_size: 5000, ..Default::default() }).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["page_size"]);
    app
});

both!(stale_etag_is_aborted_and_writes_nothing, |mut app: TestApp| async move {
    let created = app
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("acme")), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
        .seller
        .unwrap();
    let mask = |p: &str| Some(prost_types::FieldMask { paths: vec![p.to_owned()] });
    let update = |name: &str, etag: &str| pb::UpdateSellerRequest {
        seller: Some(pb::Seller {
            seller_id: "acme".into(),
            legal_name: name.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: mask("legal_name"),
        request_id: String::new(),
    };
    let first = app.registry.update_seller(update("Acme One", &created.etag)).await.unwrap().into_inner();
    assert_eq!(first.seller.as_ref().unwrap().legal_name, "Acme One");
    assert_eq!(first.seller.as_ref().unwrap().country, "CN", "fields outside the mask are kept");
    assert_ne!(first.seller.as_ref().unwrap().etag, created.etag);
    let err = app.registry.update_seller(update("Acme Two", &created.etag)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Aborted);
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(got.seller.unwrap().legal_name, "Acme One");
    assert_eq!(got.revision, first.revision, "the aborted update appended no event");
    // An unknown mask path is rejected.
    let mut bad = update("x", "");
    bad.update_mask = mask("etag");
    assert_eq!(violated_fields(&app.registry.update_seller(bad).await.unwrap_err()), vec!["update_mask.paths[0]"]);
    // A status change reaches VerifySeller.
    let suspend = pb::UpdateSellerRequest {
        seller: Some(pb::Seller {
            seller_id: "acme".into(),
            status: pb::SellerStatus::Suspended as i32,
            ..Default::default()
        }),
        update_mask: mask("status"),
        request_id: String::new(),
    };
    let rev = app.registry.update_seller(suspend).await.unwrap().into_inner().revision;
    let r = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerSuspended]);
    app
});

both!(repeated_request_id_applies_the_write_once, |mut app: TestApp| async move {
    let req = pb::CreateSellerRequest { seller: Some(seller("acme")), request_id: "req-1".into() };
    let first = app.registry.create_seller(req.clone()).await.unwrap().into_inner();
    let again = app.registry.create_seller(req).await.unwrap().into_inner();
    assert_eq!(first, again);
    let a = pb::SubmitAttestationRequest { attestation: Some(attestation("acme", 1)), request_id: "req-2".into() };
    let first = app.registry.submit_attestation(a.clone()).await.unwrap().into_inner();
    let again = app.registry.submit_attestation(a).await.unwrap().into_inner();
    assert_eq!(first, again);
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(got.attestations.len(), 1);
    assert_eq!(got.revision, 2);
    // A key is scoped to its RPC: the same id on another kind of write is another key.
    let other = app
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("other")), request_id: "req-2".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other.revision, 3);
    app
});

both!(invalid_input_is_rejected_with_fields_and_writes_nothing, |mut app: TestApp| async move {
    let mut s = seller("bad id");
    s.country = "XX".into();
    s.role = 0;
    s.contact_email = "not-an-email".into();
    s.legal_name = "x".repeat(513);
    let err = app
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(s), request_id: String::new() })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec!["seller.contact_email", "seller.country", "seller.legal_name", "seller.role", "seller.seller_id"]
    );

    app.create_seller(seller("acme")).await;
    let mut a = attestation("acme", 1);
    a.document_sha256 = "abc".into();
    a.clauses.push(pb::Clause::PurposeLimitation as i32);
    a.purposes.push(77);
    a.expire_time = days_from_now(-30);
    a.categories.clear();
    let err = app
        .registry
        .submit_attestation(pb::SubmitAttestationRequest { attestation: Some(a), request_id: String::new() })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "attestation.categories",
            "attestation.clauses[13]",
            "attestation.document_sha256",
            "attestation.expire_time",
            "attestation.purposes[2]"
        ]
    );
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert!(got.attestations.is_empty());
    assert_eq!(got.revision, 1, "only the valid CreateSeller was written");
    app
});

fn import_items() -> Vec<pb::ImportSellersRequest> {
    use pb::import_sellers_request::Item;
    let mut items = Vec::new();
    for i in 0..30 {
        let id = format!("imp{i}");
        items.push(pb::ImportSellersRequest { item: Some(Item::Seller(seller(&id))) });
        items.push(pb::ImportSellersRequest { item: Some(Item::Attestation(attestation(&id, i as u8))) });
    }
    // A bad row and an attestation for an unregistered seller: reported, the rest imported.
    let mut bad = seller("bad");
    bad.country = "ZZ".into();
    items.push(pb::ImportSellersRequest { item: Some(Item::Seller(bad)) });
    items.push(pb::ImportSellersRequest { item: Some(Item::Attestation(attestation("ghost", 200))) });
    items
}

both!(import_is_idempotent_and_reports_bad_rows, |mut app: TestApp| async move {
    let first = app.registry.import_sellers(tokio_stream::iter(import_items())).await.unwrap().into_inner();
    assert_eq!((first.sellers_created, first.attestations_created), (30, 30));
    let errors: Vec<_> = first.errors.iter().map(|e| (e.index, e.field.as_str())).collect();
    assert_eq!(errors, vec![(60, "seller.country"), (61, "attestation.seller_id")]);
    let r = app.verify_at(verify("imp7", P::OrderFulfillment, &[C::RecipientName]), first.revision).await;
    assert_eq!(r.decision(), pb::Decision::Allow);

    let second = app.registry.import_sellers(tokio_stream::iter(import_items())).await.unwrap().into_inner();
    assert_eq!((second.sellers_created, second.sellers_updated, second.attestations_created), (0, 0, 0));
    assert_eq!((second.sellers_unchanged, second.attestations_unchanged), (30, 30));
    assert_eq!(second.revision, first.revision, "a second import changes nothing");
    app
});

both!(every_write_appends_one_hash_linked_event, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (att, _) = app.attest(attestation("acme", 1)).await;
    app.registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: att.attestation_id,
            reason: "ended".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let store = store_of(&app).await;
    let events = store.events_after(0, 100).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["SELLER_CREATED", "ATTESTATION_SUBMITTED", "ATTESTATION_REVOKED"]);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.revision, i as i64 + 1);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.actor, "test-admin");
        let fields = EventFields {
            revision: e.revision,
            time_micros: e.time.as_micros(),
            actor: &e.actor,
            kind: &e.kind,
            seller_id: &e.seller_id,
            payload: &e.payload,
        };
        assert_eq!(event_hash(&prev, &fields), e.hash);
        prev = e.hash.clone();
    }
    assert_eq!(store.head().await.unwrap(), (3, prev));
    app
});
