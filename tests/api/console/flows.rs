//! The auditors' and legal's newer console screens over plain HTTP: a recorded decision explained
//! by replay, the signed checkpoint and the check of a kept one, and supervision evidence with its
//! field errors. Each write is checked through the gRPC API, never through the page alone.

use std::time::Duration;

use safeguard::auth::Role;
use safeguard::pb::v1 as pb;

use super::http::{http, http_sign_in};
use crate::both;
use crate::harness::{TestApp, attestation, seller, token};

const FORM: &str = "application/x-www-form-urlencoded";

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The text of the element with `id`, markup-unescaped (enough for notes and digests).
fn element_text(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let rest = &page[start..];
    let body = &rest[rest.find('>')? + 1..];
    let end = body.find("</")?;
    Some(body[..end].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
}

both!(a_recorded_decision_is_explained_by_replaying_it_at_its_time, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("explain-1")), ..Default::default() })
        .await
        .unwrap();
    let written = app
        .registry
        .clone()
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("explain-1", 3)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (mut checkout, _) = app.clients_as(Some(&token("checkout-svc", &[Role::Checkout])));
    let mut req =
        crate::harness::verify("explain-1", pb::Purpose::OrderFulfillment, &[pb::DataCategory::RecipientName]);
    req.min_revision = written.revision;
    let answer = checkout.verify_seller(req).await.unwrap().into_inner();
    assert_eq!(answer.decision, pb::Decision::Allow as i32);

    let (session, _) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let link = format!("/audit/decisions/{}", answer.decision_id);
    let mut page = String::new();
    for _ in 0..300 {
        let (_, _, list) = http(addr, "GET", "/audit/decisions?seller=explain-1", &[("Cookie", &session)], "").await;
        if list.contains(&format!("href=\"{link}\"")) {
            (_, _, page) = http(addr, "GET", &link, &[("Cookie", &session)], "").await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(page.contains("id=\"replay-matches\""), "the replay gives the recorded answer: {page}");
    let replayed = page.split("id=\"replayed\"").nth(1).unwrap();
    assert!(replayed.contains("decision ALLOW"), "{replayed}");
    assert_eq!(element_text(&page, "replayed-revision").unwrap(), written.revision.to_string());
    assert_eq!(element_text(&page, "recorded-revision").unwrap(), written.revision.to_string());

    // A later revocation does not change what the registry said then.
    let revoke = pb::RevokeAttestationRequest {
        attestation_id: written.attestation.unwrap().attestation_id,
        reason: "ended".into(),
        ..Default::default()
    };
    app.registry.clone().revoke_attestation(revoke).await.unwrap();
    let (_, _, again) = http(addr, "GET", &link, &[("Cookie", &session)], "").await;
    assert!(again.contains("id=\"replay-matches\""), "{again}");

    let (status, _, _) = http(addr, "GET", "/audit/decisions/no-such-decision", &[("Cookie", &session)], "").await;
    assert_eq!(status, 404);
    let (legal, _) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let (status, _, _) = http(addr, "GET", &link, &[("Cookie", &legal)], "").await;
    assert_eq!(status, 403, "explaining decisions is the auditors'");
    app
});

both!(the_chain_page_shows_the_signed_checkpoint_and_checks_a_kept_one, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    for id in ["chk-1", "chk-2"] {
        app.registry
            .clone()
            .create_seller(pb::CreateSellerRequest { seller: Some(seller(id)), ..Default::default() })
            .await
            .unwrap();
    }
    let (session, csrf) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let (status, _, page) = http(addr, "GET", "/audit/chain", &[("Cookie", &session)], "").await;
    assert_eq!(status, 200);
    assert_eq!(element_text(&page, "checkpoint-size").unwrap(), "2");
    let note = element_text(&page, "checkpoint-note").unwrap();
    let (_, _, download) = http(addr, "GET", "/audit/checkpoint.txt", &[("Cookie", &session)], "").await;
    assert_eq!(download, note, "the download is the signed note shown");
    let origin = element_text(&page, "checkpoint-origin").unwrap();
    assert!(note.starts_with(&format!("{origin}\n2\n")), "{note}");

    // The log grows; the kept checkpoint of size 2 is still a prefix of it.
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("chk-3")), ..Default::default() })
        .await
        .unwrap();
    let post = [("Cookie", session.as_str()), ("Content-Type", FORM)];
    let (status, _, checked) =
        http(addr, "POST", "/audit/chain", &post, &encode(&[("csrf", &csrf), ("note", &note)])).await;
    assert_eq!(status, 200);
    assert!(checked.contains("id=\"trusted-consistent\""), "{checked}");

    // A note whose size was altered no longer verifies: refused next to the field, never consistent.
    let forged = note.replacen("\n2\n", "\n1\n", 1);
    let (_, _, refused) =
        http(addr, "POST", "/audit/chain", &post, &encode(&[("csrf", &csrf), ("note", &forged)])).await;
    assert!(refused.contains("data-field=\"note\""), "{refused}");
    assert!(!refused.contains("trusted-consistent"), "{refused}");
    let (status, _, _) = http(addr, "POST", "/audit/chain", &post, &encode(&[("note", &note)])).await;
    assert_eq!(status, 403, "the form needs its CSRF token");
    app
});

both!(supervision_evidence_is_recorded_from_the_seller_page_with_errors_beside_fields, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("sup-1")), ..Default::default() })
        .await
        .unwrap();
    let get = || async {
        app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "sup-1".into() }).await.unwrap().into_inner()
    };
    let before = get().await.revision;
    let (session, csrf) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let (_, _, page) = http(addr, "GET", "/sellers/sup-1", &[("Cookie", &session)], "").await;
    assert!(page.contains("id=\"supervision-form\""));
    let post = [("Cookie", session.as_str()), ("Content-Type", FORM)];
    let bad =
        encode(&[("csrf", &csrf), ("kind", ""), ("time", "2026-13-01"), ("evidence_sha256", "zz"), ("note", "x")]);
    let (status, _, errors) = http(addr, "POST", "/sellers/sup-1/supervision", &post, &bad).await;
    assert_eq!(status, 400);
    for field in ["kind", "time", "evidence_sha256"] {
        assert!(errors.contains(&format!("data-field=\"{field}\"")), "{field} has its error: {errors}");
    }
    assert_eq!(get().await.revision, before, "a refused form writes nothing");

    let digest = "ab".repeat(32);
    let good = encode(&[
        ("csrf", &csrf),
        ("kind", "INSPECTION"),
        ("time", "2026-01-15"),
        ("evidence_sha256", &digest),
        ("note", "on-site audit"),
    ]);
    let (status, headers, _) = http(addr, "POST", "/sellers/sup-1/supervision", &post, &good).await;
    assert_eq!(status, 303, "{headers:?}");
    assert!(get().await.revision > before);
    let (_, _, shown) = http(addr, "GET", "/sellers/sup-1", &[("Cookie", &session)], "").await;
    let table = shown.split("id=\"supervision\"").nth(1).unwrap();
    assert!(table.contains(&digest) && table.contains("INSPECTION") && table.contains("on-site audit"), "{table}");
    assert!(table.contains("legal-ana"), "the recorder is shown");
    app
});
