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

/// Registers `id` with a contract, asks checkout's VerifySeller about it once (ALLOW), and returns
/// the contract as written and the decision's id.
pub(super) async fn an_allowed_decision(app: &TestApp, id: &str, doc: u8) -> (pb::SubmitAttestationResponse, String) {
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller(id)), ..Default::default() })
        .await
        .unwrap();
    let written = app
        .registry
        .clone()
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation(id, doc)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (mut checkout, _) = app.clients_as(Some(&token("checkout-svc", &[Role::Checkout])));
    let mut req = crate::harness::verify(id, pb::Purpose::OrderFulfillment, &[pb::DataCategory::RecipientName]);
    req.min_revision = written.revision;
    let answer = checkout.verify_seller(req).await.unwrap().into_inner();
    assert_eq!(answer.decision, pb::Decision::Allow as i32);
    (written, answer.decision_id)
}

both!(a_recorded_decision_is_explained_by_replaying_it_at_its_time, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (written, decision_id) = an_allowed_decision(&app, "explain-1", 3).await;
    let (session, _) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let link = format!("/audit/decisions/{decision_id}");
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
    // The decision log's checkpoint sits beside it, under its own origin, and downloads too.
    assert_eq!(element_text(&page, "decisions-checkpoint-origin").unwrap(), format!("{origin}/decisions"));
    let decisions_note = element_text(&page, "decisions-checkpoint-note").unwrap();
    let (_, _, download) = http(addr, "GET", "/audit/checkpoint.txt?log=decisions", &[("Cookie", &session)], "").await;
    assert_eq!(download, decisions_note);
    let (status, _, _) = http(addr, "GET", "/audit/checkpoint.txt?log=bogus", &[("Cookie", &session)], "").await;
    assert_eq!(status, 400, "an unknown log is refused");

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

/// The registry's head revision, from the change feed (a small test registry fits one page).
async fn head(app: &TestApp) -> i64 {
    let mut audit = app.audit_as(Some(&token("auditor-bo", &[Role::Auditor])));
    let req = pb::ListRegistryEventsRequest { page_size: 1000, ..Default::default() };
    audit.list_registry_events(req).await.unwrap().into_inner().events.last().map_or(0, |e| e.revision)
}

/// A CSV in the import format: two good sellers, a bad seller on line 3 (country, e-mail), an
/// attestation of the first seller on line 5 with a bad digest, a good attestation, and on line 7
/// a well-formed attestation of a seller that is not registered (a fault only the import finds).
pub(super) fn import_csv() -> String {
    let header = "type,seller_id,legal_name,country,status,role,contact_email,privacy_contact,contract_ref,\
                  document_sha256,clauses,purposes,categories,signed_time,effective_time,expire_time,signatory,retention_days";
    let clauses = "PURPOSE_LIMITATION;DATA_MINIMIZATION;SECURITY_SAFEGUARDS;RETENTION_AND_DELETION;\
                   ONWARD_TRANSFER_RESTRICTION;SUPERVISION_AND_AUDIT;BREACH_NOTIFICATION;\
                   GRIEVANCE_AND_DISPUTE_RESOLUTION;DATA_SUBJECT_RIGHTS;LIABILITY_AND_COMPENSATION;\
                   SUSPENSION_AND_TERMINATION;PIPA_COMPLIANCE_UNDERTAKING";
    let att = |seller: &str, digest: &str| {
        format!(
            "attestation,{seller},,,,,,,DPA-IMP-1,{digest},{clauses},ORDER_FULFILLMENT,RECIPIENT_NAME;SHIPPING_ADDRESS,\
             2025-01-01T00:00:00Z,2025-01-02T00:00:00Z,2099-01-01T00:00:00Z,Jane Kim,90"
        )
    };
    [
        header.to_owned(),
        "seller,imp-1,Imported One Ltd,CN,,RECIPIENT,legal@one.example,dpo@one.example,,,,,,,,,,".to_owned(),
        "seller,imp-bad,Imported Bad Ltd,Korea,,RECIPIENT,not-an-email,dpo@bad.example,,,,,,,,,,".to_owned(),
        "seller,imp-2,Imported Two Ltd,JP,,ENTRUSTEE,legal@two.example,dpo@two.example,,,,,,,,,,".to_owned(),
        att("imp-1", "not-a-digest"),
        att("imp-1", &"cd".repeat(32)),
        att("imp-ghost", &"ef".repeat(32)),
    ]
    .join("\n")
        + "\n"
}

both!(a_csv_import_previews_row_errors_writing_nothing_then_imports_in_the_background, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let before = head(&app).await;
    let (session, csrf) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let post = [("Cookie", session.as_str()), ("Content-Type", FORM)];
    let csv = import_csv();
    let (status, _, preview) = http(addr, "POST", "/import", &post, &encode(&[("csrf", &csrf), ("csv", &csv)])).await;
    assert_eq!(status, 200, "{preview}");
    for (line, field) in [(3, "country"), (3, "contact_email"), (5, "document_sha256")] {
        let row = format!("data-line=\"{line}\" data-field=\"{field}\"");
        assert!(preview.contains(&row), "line {line} shows its {field} error: {preview}");
    }
    assert_eq!(element_text(&preview, "preview-rows").unwrap(), "6");
    assert_eq!(element_text(&preview, "preview-bad").unwrap(), "2");
    assert_eq!(head(&app).await, before, "the dry run writes nothing");
    let missing = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "imp-1".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let run = preview.split("action=\"/import/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // Without its CSRF token the confirmation is refused, and nothing starts.
    let (status, _, _) = http(addr, "POST", &format!("/import/{run}"), &post, "").await;
    assert_eq!(status, 403);
    let (status, headers, _) = http(addr, "POST", &format!("/import/{run}"), &post, &encode(&[("csrf", &csrf)])).await;
    assert_eq!(status, 303, "{headers:?}");
    let job = run.trim_end_matches("/run");
    let (_, _, page) = http(addr, "GET", &format!("/import/{job}"), &[("Cookie", &session)], "").await;
    assert!(page.contains(&format!("hx-get=\"/import/{job}/progress\"")) || page.contains("id=\"import-done\""));
    let mut fragment = String::new();
    for _ in 0..300 {
        (_, _, fragment) = http(addr, "GET", &format!("/import/{job}/progress"), &[("Cookie", &session)], "").await;
        if fragment.contains("import-done") || fragment.contains("import-failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fragment.contains("id=\"import-done\""), "{fragment}");
    assert!(!fragment.contains("hx-get"), "a finished import stops polling");
    assert_eq!(element_text(&fragment, "rows-done").unwrap(), "6");
    assert_eq!(element_text(&fragment, "errors-count").unwrap(), "4");
    assert!(
        fragment.contains("data-line=\"7\" data-field=\"seller_id\"")
            && fragment.contains("imp-ghost is not registered"),
        "a fault the import found is shown by line and column: {fragment}"
    );
    let revision: i64 = element_text(&fragment, "import-revision").unwrap().parse().unwrap();
    assert_eq!(revision, head(&app).await, "the view ends with the revision the import produced");
    assert_eq!(revision, before + 3, "two sellers and one attestation were written");
    let got = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "imp-1".into() }).await.unwrap();
    let got = got.into_inner();
    assert_eq!(got.attestations.len(), 1);
    assert_eq!(got.attestations[0].submitted_by, "legal-ana", "the importer records who confirmed it");

    // Another person cannot see or start someone's upload; an auditor cannot import at all.
    let (other, _) = http_sign_in(addr, &token("legal-bo", &[Role::Legal])).await;
    let (status, _, _) = http(addr, "GET", &format!("/import/{job}"), &[("Cookie", &other)], "").await;
    assert_eq!(status, 404);
    let (auditor, auditor_csrf) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let form = encode(&[("csrf", &auditor_csrf), ("csv", &csv)]);
    let (status, _, _) = http(addr, "POST", "/import", &[("Cookie", &auditor), ("Content-Type", FORM)], &form).await;
    assert_eq!(status, 403);
    app
});

both!(the_public_register_pages_by_country, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    for (i, (id, country)) in [("reg-cn", "CN"), ("reg-jp", "JP")].into_iter().enumerate() {
        let mut s = seller(id);
        s.country = country.into();
        app.registry
            .clone()
            .create_seller(pb::CreateSellerRequest { seller: Some(s), ..Default::default() })
            .await
            .unwrap();
        app.registry
            .clone()
            .submit_attestation(pb::SubmitAttestationRequest {
                attestation: Some(attestation(id, i as u8 + 20)),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut pages = (String::new(), String::new());
    for _ in 0..300 {
        let (_, _, cn) = http(addr, "GET", "/recipients?country=CN", &[], "").await;
        let (_, _, jp) = http(addr, "GET", "/recipients?country=jp", &[], "").await;
        pages = (cn, jp);
        if pages.0.contains("data-seller=\"reg-cn\"") && pages.1.contains("data-seller=\"reg-jp\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cn, jp) = pages;
    assert!(cn.contains("data-seller=\"reg-cn\"") && !cn.contains("data-seller=\"reg-jp\""), "{cn}");
    assert!(jp.contains("data-seller=\"reg-jp\"") && !jp.contains("data-seller=\"reg-cn\""), "{jp}");
    assert_eq!(element_text(&cn, "recipients-count").unwrap(), "1");
    let (_, _, none) = http(addr, "GET", "/recipients?country=ZZ", &[], "").await;
    assert_eq!(element_text(&none, "recipients-count").unwrap(), "0", "a country without recipients is empty");
    app
});
