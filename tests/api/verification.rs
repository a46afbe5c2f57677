//! VerifySeller and BatchVerifySellers through the public API.

use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;

use crate::both;
use crate::harness::*;

both!(registered_and_attested_seller_is_allowed, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (att, rev) = app.attest(attestation("acme", 1)).await;
    let r = app
        .verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName, C::PhoneNumber, C::ShippingAddress]), rev)
        .await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    assert_eq!(r.allowed_categories.len(), 3);
    assert!(r.denied_categories.is_empty());
    assert_eq!(r.attestation_ids, vec![att.attestation_id]);
    assert!(r.revision >= rev);
    assert_eq!(r.policy_version, "pipa-kr-2026.11");
    assert!(!r.decision_id.is_empty());
    // min(policy 90 days for fulfilment, the contract's 60).
    assert_eq!(r.retention_days, 60);
    let d = r.disclosure.unwrap();
    assert_eq!(d.recipient_legal_name, "acme Trading Co., Ltd.");
    assert_eq!(d.recipient_contact, "privacy@acme.example");
    assert_eq!(d.country, "CN");
    assert_eq!(d.purpose(), P::OrderFulfillment);
    assert_eq!(d.categories.len(), 3);
    // Cacheable for the policy's 300 s at most.
    let until = r.valid_until.unwrap().seconds - r.decision_time.unwrap().seconds;
    assert!((1..=300).contains(&until), "{until}");
    app
});

both!(missing_clause_allows_partially_and_names_the_clause, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let mut a = attestation("acme", 1);
    a.clauses.retain(|c| *c != pb::Clause::IdentifierProtection as i32);
    let (_, rev) = app.attest(a).await;
    let r = app.verify_at(verify("acme", P::CustomsClearance, &[C::RecipientName, C::CustomsCode]), rev).await;
    assert_eq!(r.decision(), pb::Decision::AllowPartial, "{r:?}");
    assert_eq!(r.allowed_categories, vec![C::RecipientName as i32]);
    assert_eq!(r.denied_categories.len(), 1);
    let denial = &r.denied_categories[0];
    assert_eq!(denial.category(), C::CustomsCode);
    assert_eq!(codes(&denial.reasons), vec![pb::ReasonCode::ClauseMissing]);
    assert_eq!(denial.reasons[0].clause(), pb::Clause::IdentifierProtection);
    app
});

async fn deny_reason(app: &mut TestApp, a: pb::Attestation) -> Vec<pb::ReasonCode> {
    let (_, rev) = app.attest(a).await;
    let r = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    assert_eq!(r.decision(), pb::Decision::Deny, "{r:?}");
    assert!(r.allowed_categories.is_empty());
    assert!(r.disclosure.is_none());
    codes(&r.reasons)
}

both!(expired_contract_denies_with_contract_expired, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let mut a = attestation("acme", 1);
    a.effective_time = days_from_now(-400);
    a.expire_time = days_from_now(-1);
    assert_eq!(deny_reason(&mut app, a).await, vec![pb::ReasonCode::ContractExpired]);
    app
});

both!(contract_not_yet_effective_denies, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let mut a = attestation("acme", 1);
    a.effective_time = days_from_now(2);
    assert_eq!(deny_reason(&mut app, a).await, vec![pb::ReasonCode::ContractNotYetEffective]);
    app
});

both!(revoked_attestation_denies_immediately, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (att, rev) = app.attest(attestation("acme", 1)).await;
    let req = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    assert_eq!(app.verify_at(req.clone(), rev).await.decision(), pb::Decision::Allow);
    let revoked = app
        .registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: att.attestation_id.clone(),
            reason: "seller breached the security clause".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.attestation.as_ref().unwrap().state(), pb::AttestationState::Revoked);
    let r = app.verify_at(req, revoked.revision).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::ContractRevoked]);
    assert_eq!(codes(&r.denied_categories[0].reasons), vec![pb::ReasonCode::ContractRevoked]);
    app
});

both!(unknown_and_suspended_sellers_are_denied, |mut app: TestApp| async move {
    let r = app.verify_at(verify("nobody", P::OrderFulfillment, &[C::RecipientName]), 0).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerUnknown]);

    let mut s = seller("paused");
    s.status = pb::SellerStatus::Suspended as i32;
    app.create_seller(s).await;
    let (_, rev) = app.attest(attestation("paused", 1)).await;
    let r = app.verify_at(verify("paused", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerSuspended]);

    let mut s = seller("gone");
    s.status = pb::SellerStatus::Offboarded as i32;
    let rev = app.create_seller(s).await;
    let r = app.verify_at(verify("gone", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerOffboarded]);
    app
});

both!(prohibited_category_is_denied_and_the_rest_allowed, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    let r =
        app.verify_at(verify("acme", P::OrderFulfillment, &[C::PaymentData, C::RecipientName, C::Email]), rev).await;
    assert_eq!(r.decision(), pb::Decision::AllowPartial);
    assert_eq!(r.allowed_categories, vec![C::RecipientName as i32]);
    let denied: Vec<_> = r.denied_categories.iter().map(|d| (d.category(), codes(&d.reasons))).collect();
    assert_eq!(
        denied,
        vec![
            (C::PaymentData, vec![pb::ReasonCode::CategoryProhibited]),
            (C::Email, vec![pb::ReasonCode::CategoryProhibited])
        ]
    );
    app
});

both!(marketing_is_denied_by_policy, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let mut a = attestation("acme", 1);
    a.purposes.push(P::Marketing as i32);
    let (_, rev) = app.attest(a).await;
    let r = app.verify_at(verify("acme", P::Marketing, &[C::RecipientName]), rev).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::PurposeDeniedByPolicy]);
    app
});

both!(contract_necessity_is_a_basis_for_entrustees_only, |mut app: TestApp| async move {
    let mut e = seller("courier");
    e.role = pb::SellerRole::Entrustee as i32;
    app.create_seller(e).await;
    app.create_seller(seller("shop")).await;
    app.attest(attestation("courier", 1)).await;
    let (_, rev) = app.attest(attestation("shop", 2)).await;
    for (id, expected) in [("courier", pb::Decision::Allow), ("shop", pb::Decision::Deny)] {
        let mut req = verify(id, P::OrderFulfillment, &[C::ShippingAddress]);
        req.basis = pb::TransferBasis::ContractNecessityDisclosed as i32;
        let r = app.verify_at(req, rev).await;
        assert_eq!(r.decision(), expected, "{id}: {r:?}");
        if expected == pb::Decision::Deny {
            assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::BasisNotAccepted]);
        }
    }
    let mut req = verify("shop", P::OrderFulfillment, &[C::ShippingAddress]);
    req.basis = 0;
    let r = app.verify_at(req, rev).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::BasisMissing]);
    app
});

both!(batch_answers_in_request_order_each_on_its_own, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    let mut first = verify("nobody", P::OrderFulfillment, &[C::RecipientName]);
    first.min_revision = rev;
    let requests = vec![
        first,
        verify("acme", P::OrderFulfillment, &[C::RecipientName]),
        verify("acme", P::Marketing, &[C::RecipientName]),
    ];
    let r =
        app.verification.batch_verify_sellers(pb::BatchVerifySellersRequest { requests }).await.unwrap().into_inner();
    let got: Vec<_> = r.responses.iter().map(|x| (x.seller_id.clone(), x.decision())).collect();
    assert_eq!(
        got,
        vec![
            ("nobody".to_owned(), pb::Decision::Deny),
            ("acme".to_owned(), pb::Decision::Allow),
            ("acme".to_owned(), pb::Decision::Deny)
        ]
    );
    // An invalid item fails the whole batch, naming the item.
    let requests = vec![verify("acme", P::OrderFulfillment, &[C::RecipientName]), verify("", P::OrderFulfillment, &[])];
    let err = app.verification.batch_verify_sellers(pb::BatchVerifySellersRequest { requests }).await.unwrap_err();
    let fields = violated_fields(&err);
    assert!(fields.contains(&"requests[1].seller_id".to_owned()), "{fields:?}");
    assert!(fields.contains(&"requests[1].categories".to_owned()), "{fields:?}");
    app
});

both!(malformed_verify_requests_are_invalid_argument, |mut app: TestApp| async move {
    let cases: Vec<(pb::VerifySellerRequest, &str)> = vec![
        (verify("", P::OrderFulfillment, &[C::RecipientName]), "seller_id"),
        (verify("bad id!", P::OrderFulfillment, &[C::RecipientName]), "seller_id"),
        (verify("acme", P::OrderFulfillment, &[]), "categories"),
        (verify("acme", P::Unspecified, &[C::RecipientName]), "purpose"),
        (pb::VerifySellerRequest { categories: vec![0], ..verify("acme", P::OrderFulfillment, &[]) }, "categories[0]"),
        (pb::VerifySellerRequest { categories: vec![99], ..verify("acme", P::OrderFulfillment, &[]) }, "categories[0]"),
        (verify("acme", P::OrderFulfillment, &[C::RecipientName, C::RecipientName]), "categories[1]"),
        (
            pb::VerifySellerRequest { purpose: 42, ..verify("acme", P::OrderFulfillment, &[C::RecipientName]) },
            "purpose",
        ),
        (pb::VerifySellerRequest { basis: 42, ..verify("acme", P::OrderFulfillment, &[C::RecipientName]) }, "basis"),
        (
            pb::VerifySellerRequest { min_revision: -1, ..verify("acme", P::OrderFulfillment, &[C::RecipientName]) },
            "min_revision",
        ),
    ];
    for (req, field) in cases {
        let err = app.verification.verify_seller(req.clone()).await.unwrap_err();
        assert_eq!(violated_fields(&err), vec![field.to_owned()], "{req:?}");
    }
    app
});

both!(min_revision_beyond_the_registry_answers_unavailable, |mut app: TestApp| async move {
    let mut req = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    req.min_revision = 1_000_000;
    let mut request = tonic::Request::new(req);
    request.set_timeout(std::time::Duration::from_millis(300));
    let err = app.verification.verify_seller(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    app
});
