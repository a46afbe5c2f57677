//! Fail-closed validation of what the registry accepts: a contract cannot be attested before it is
//! signed, text shown to buyers and auditors cannot hide or reorder characters, and a policy that
//! accepts CONTRACT_NECESSITY_DISCLOSED for recipients stops start-up.

use prost_types::{FieldMask, Timestamp};
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;

use crate::both;
use crate::harness::*;

fn seconds_from_now(seconds: i64) -> Option<Timestamp> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    Some(Timestamp { seconds: now + seconds, nanos: 0 })
}

fn submit(a: pb::Attestation) -> pb::SubmitAttestationRequest {
    pb::SubmitAttestationRequest { attestation: Some(a), request_id: String::new() }
}

/// Imports `items` and returns the (index, field) of every item refused.
async fn import(app: &mut TestApp, items: Vec<pb::import_sellers_request::Item>) -> (Vec<(i64, String)>, i64) {
    let items: Vec<_> = items.into_iter().map(|item| pb::ImportSellersRequest { item: Some(item) }).collect();
    let r = app.registry.import_sellers(tokio_stream::iter(items)).await.unwrap().into_inner();
    (r.errors.into_iter().map(|e| (e.index, e.field)).collect(), r.revision)
}

both!(an_attestation_signed_in_the_future_is_refused_and_never_allows, |mut app: TestApp| async move {
    use pb::import_sellers_request::Item;
    let rev = app.create_seller(seller("acme")).await;
    let request = verify("acme", P::OrderFulfillment, &[C::RecipientName]);

    // Tomorrow's contract, otherwise in force today.
    let mut unsigned = attestation("acme", 1);
    unsigned.signed_time = days_from_now(1);
    let err = app.registry.submit_attestation(submit(unsigned.clone())).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["attestation.signed_time"], "{err:?}");
    // Just beyond the tolerated clock skew.
    let mut unsigned_soon = attestation("acme", 2);
    unsigned_soon.signed_time = seconds_from_now(5 * 60);
    let err = app.registry.submit_attestation(submit(unsigned_soon.clone())).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["attestation.signed_time"], "{err:?}");
    // The bulk path applies the same validator.
    let (errors, _) = import(&mut app, vec![Item::Attestation(unsigned), Item::Attestation(unsigned_soon)]).await;
    assert_eq!(errors, vec![(0, "attestation.signed_time".to_owned()), (1, "attestation.signed_time".to_owned())]);

    let r = app.verify_at(request.clone(), rev).await;
    assert_eq!(r.revision, rev, "nothing was written");
    assert_eq!(r.decision(), pb::Decision::Deny, "{r:?}");
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::ContractMissing]);

    // A client clock a little ahead of ours is tolerated; so is a contract signed a moment ago.
    let mut skewed = attestation("acme", 3);
    skewed.signed_time = seconds_from_now(20);
    let (_, rev) = app.attest(skewed).await;
    let mut just_signed = attestation("acme", 4);
    just_signed.signed_time = seconds_from_now(0);
    let (errors, rev) = {
        let (errors, r) = import(&mut app, vec![Item::Attestation(just_signed)]).await;
        (errors, r.max(rev))
    };
    assert!(errors.is_empty(), "{errors:?}");
    let r = app.verify_at(request, rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    app
});

/// Characters that hide text or change how it is laid out, one of each kind the registry refuses.
const HIDDEN: [(char, &str); 14] = [
    ('\u{202E}', "right-to-left override"),
    ('\u{202A}', "left-to-right embedding"),
    ('\u{2066}', "left-to-right isolate"),
    ('\u{2069}', "pop directional isolate"),
    ('\u{200B}', "zero-width space"),
    ('\u{200D}', "zero-width joiner"),
    ('\u{200F}', "right-to-left mark"),
    ('\u{2060}', "word joiner"),
    ('\u{FEFF}', "byte-order mark"),
    ('\u{061C}', "Arabic letter mark"),
    ('\u{2028}', "line separator"),
    ('\u{2029}', "paragraph separator"),
    ('\u{0085}', "next line (C1 control)"),
    ('\u{E0041}', "tag latin capital A"),
];

/// `clean` with `c` hidden in its middle.
fn hide(clean: &str, c: char) -> String {
    let mid = clean.len() / 2;
    let mid = (0..=mid).rev().find(|i| clean.is_char_boundary(*i)).unwrap_or(0);
    format!("{}{c}{}", &clean[..mid], &clean[mid..])
}

both!(names_and_contacts_with_hidden_or_reordering_characters_are_refused, |mut app: TestApp| async move {
    use pb::import_sellers_request::Item;
    app.create_seller(seller("acme")).await;
    let (_, before) = app.attest(attestation("acme", 1)).await;
    let mut failures = Vec::new();
    for (i, (c, what)) in HIDDEN.into_iter().enumerate() {
        // Every displayed field of every write that takes it: (rpc and field, outcome).
        let mut results: Vec<(String, Result<Vec<String>, String>)> = Vec::new();
        let fields = |r: Result<(), tonic::Status>| match r {
            Ok(()) => Err("accepted".to_owned()),
            Err(s) if s.code() == tonic::Code::InvalidArgument => Ok(violated_fields(&s)),
            Err(s) => Err(format!("{:?}", s.code())),
        };
        for field in ["legal_name", "privacy_contact", "contact_email"] {
            let mut s = seller(&format!("new-{i}"));
            let value = match field {
                "legal_name" => &mut s.legal_name,
                "privacy_contact" => &mut s.privacy_contact,
                _ => &mut s.contact_email,
            };
            *value = hide(value, c);
            let update = pb::Seller { seller_id: "acme".into(), ..s.clone() };
            let created = app
                .registry
                .create_seller(pb::CreateSellerRequest { seller: Some(s.clone()), request_id: String::new() })
                .await;
            results.push((format!("CreateSeller seller.{field}"), fields(created.map(drop))));
            let updated = app
                .registry
                .update_seller(pb::UpdateSellerRequest {
                    seller: Some(update),
                    update_mask: Some(FieldMask { paths: vec![field.to_owned()] }),
                    request_id: String::new(),
                })
                .await;
            results.push((format!("UpdateSeller seller.{field}"), fields(updated.map(drop))));
            let (errors, _) = import(&mut app, vec![Item::Seller(s)]).await;
            results.push((format!("ImportSellers seller.{field}"), Ok(errors.into_iter().map(|(_, f)| f).collect())));
        }
        for field in ["signatory", "contract_ref"] {
            let mut a = attestation("acme", 10 + i as u8);
            let value = if field == "signatory" { &mut a.signatory } else { &mut a.contract_ref };
            *value = hide(value, c);
            let submitted = app.registry.submit_attestation(submit(a.clone())).await;
            results.push((format!("SubmitAttestation attestation.{field}"), fields(submitted.map(drop))));
            let (errors, _) = import(&mut app, vec![Item::Attestation(a)]).await;
            results
                .push((format!("ImportSellers attestation.{field}"), Ok(errors.into_iter().map(|(_, f)| f).collect())));
        }
        for field in ["order_ref", "note"] {
            let mut order = pb::SuspensionOrder {
                order_ref: "PIPC-2026-0042".into(),
                seller_id: "acme".into(),
                note: "Ordered to stop transfers pending review".into(),
                ..Default::default()
            };
            let value = if field == "note" { &mut order.note } else { &mut order.order_ref };
            *value = hide(value, c);
            let created = app
                .registry
                .create_suspension_order(pb::CreateSuspensionOrderRequest {
                    order: Some(order),
                    request_id: String::new(),
                })
                .await;
            results.push((format!("CreateSuspensionOrder order.{field}"), fields(created.map(drop))));
        }
        for (call, result) in results {
            let field = call.split(' ').nth(1).unwrap_or_default().to_owned();
            if result.as_ref() != Ok(&vec![field.clone()]) {
                failures.push(format!("  {what} (U+{:04X}) in {call}: {result:?}", u32::from(c)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} hidden characters were not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing of it was written: the registry is where it was, and acme's contract still allows.
    let r = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), before).await;
    assert_eq!(r.revision, before, "{r:?}");
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    assert_eq!(r.disclosure.unwrap().recipient_legal_name, seller("acme").legal_name);
    app
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_accepting_contract_necessity_for_recipients_stops_start_up_naming_the_line() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    let recipient = "RECIPIENT = [\"SEPARATE_CONSENT\",";
    let policy = safeguard::domain::policy::DEFAULT_POLICY_TOML.replacen(
        recipient,
        "RECIPIENT = [\"SEPARATE_CONSENT\", \"CONTRACT_NECESSITY_DISCLOSED\",",
        1,
    );
    let line = policy.lines().position(|l| l.starts_with(recipient)).unwrap() + 1;
    std::fs::write(&file, &policy).unwrap();
    let mut settings = test_settings(&db);
    settings.policy.path = Some(file.clone());
    let err = match safeguard::startup::App::build(settings).await {
        Ok(_) => panic!("a policy accepting CONTRACT_NECESSITY_DISCLOSED for recipients was loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&format!("line {line} ")), "{err}");
    assert!(err.contains("CONTRACT_NECESSITY_DISCLOSED") && err.contains("RECIPIENT"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");

    // The same file without it starts.
    std::fs::write(&file, safeguard::domain::policy::DEFAULT_POLICY_TOML).unwrap();
    let mut settings = test_settings(&db);
    settings.policy.path = Some(file);
    let app = TestApp::spawn_with(db, settings).await;
    app.stop().await;
}
