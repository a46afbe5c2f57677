//! The newer flows in a real browser: the CSV import's dry run, confirmation and progress view,
//! supervision evidence with an evidence file hashed in the page, and a decision explained.

use std::time::Duration;

use fantoccini::Locator;
use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use sha2::{Digest, Sha256};

use super::{Browser, console};
use crate::both;
use crate::harness::{TestApp, seller, token};

/// Waits until the element `css` exists (htmx swaps it in while polling).
async fn wait_for(b: &Browser, css: &str) -> bool {
    for _ in 0..400 {
        if b.c().find(Locator::Css(css)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

both!(legal_imports_a_csv_after_a_dry_run_and_watches_it_finish, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    let base = console(&app);
    b.sign_in(&base, &token("legal-ana", &[Role::Legal])).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sellers.csv");
    std::fs::write(&file, crate::console::flows::import_csv()).unwrap();
    b.goto(&base, "/import").await;
    b.c().find(Locator::Css("#csv-file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    let mut read = String::new();
    for _ in 0..200 {
        read = b.c().find(Locator::Css("#csv")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
        if !read.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(read.starts_with("type,seller_id"), "the chosen file is read into the form: {read:?}");
    b.submit("#preview").await;
    assert_eq!(b.text("#preview-bad").await, "2");
    let line3 = b.c().find_all(Locator::Css("#row-errors tr[data-line='3']")).await.unwrap();
    assert_eq!(line3.len(), 2, "line 3 lists its two faults");
    b.screenshot("import-preview").await;
    let missing = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "imp-2".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound, "the dry run wrote nothing");

    b.submit("#confirm-import").await;
    assert!(wait_for(&b, "#import-done").await, "the progress view reaches the end");
    assert_eq!(b.text("#rows-done").await, "6");
    let revision: i64 = b.text("#import-revision").await.parse().unwrap();
    assert!(revision >= 3);
    b.screenshot("import-progress").await;
    let got = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "imp-2".into() }).await.unwrap();
    assert_eq!(got.into_inner().seller.unwrap().legal_name, "Imported Two Ltd");
    b.close().await;
    app
});

both!(legal_records_supervision_with_a_hashed_evidence_file, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("sup-b")), ..Default::default() })
        .await
        .unwrap();
    let base = console(&app);
    b.sign_in(&base, &token("legal-ana", &[Role::Legal])).await;
    b.goto(&base, "/sellers/sup-b").await;
    // Recorded without a kind: the error shows beside the field, and nothing is written.
    b.submit("#record-supervision").await;
    assert!(b.text(".field-error[data-field='kind']").await.contains("specified"));
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("inspection-report.pdf");
    let bytes = b"%PDF-1.4\n% on-site inspection report\n%%EOF\n".repeat(20);
    std::fs::write(&evidence, &bytes).unwrap();
    b.c().find(Locator::Css("#kind")).await.unwrap().select_by_value("INSPECTION").await.unwrap();
    b.c().find(Locator::Css("#evidence")).await.unwrap().send_keys(evidence.to_str().unwrap()).await.unwrap();
    let expected = hex::encode(Sha256::digest(&bytes));
    let mut shown = String::new();
    for _ in 0..300 {
        shown = b.text("#evidence_sha256-shown").await;
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(shown, expected);
    b.fill("#note", "annual inspection").await;
    b.submit("#record-supervision").await;
    assert_eq!(b.path().await, "/sellers/sup-b");
    assert_eq!(b.text("#supervision .evidence").await, expected);
    assert_eq!(b.text("#supervision .kind").await, "INSPECTION");
    b.screenshot("seller-supervision").await;
    b.close().await;
    app
});

both!(an_auditor_explains_a_decision_from_the_search_and_checks_a_kept_checkpoint, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    crate::console::flows::an_allowed_decision(&app, "exp-b", 9).await;
    let base = console(&app);
    b.sign_in(&base, &token("auditor-bo", &[Role::Auditor])).await;
    let mut found = false;
    for _ in 0..200 {
        b.goto(&base, "/audit/decisions?seller=exp-b").await;
        b.text("#decisions").await;
        if b.c().find(Locator::Css("#decisions a.explain")).await.is_ok() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "the decision is listed with its explanation link");
    b.screenshot("decisions").await;
    b.submit("#decisions a.explain").await;
    assert!(b.text("#replay-matches").await.len() > 10);
    assert!(b.text("#replayed").await.contains("ALLOW"));
    b.screenshot("explain").await;

    b.goto(&base, "/audit/chain").await;
    let note = b.text("#checkpoint-note").await;
    b.fill("#note", &note).await;
    b.submit("#check-trusted").await;
    assert!(b.text("#trusted-consistent").await.len() > 10);
    b.screenshot("chain").await;
    b.close().await;
    app
});
