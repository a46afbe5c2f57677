//! The operator commands (`import`, `export`, `generate`) through their library functions, on
//! SQLite and PostgreSQL: round trips are the identity, bad rows are reported by line while the rest
//! is imported, and what the CLI writes is what the gRPC API then serves.

use std::path::{Path, PathBuf};

use safeguard::cli::{self, Format, GenerateOptions, ImportOptions, ImportReport};
use safeguard::config::Settings;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;

use crate::harness::*;
use crate::on_both;

/// 2026-01-15T00:00:00Z: generated data that does not depend on the day the test runs.
const AS_OF: i64 = 1_768_435_200;

fn options(batch_size: usize) -> ImportOptions {
    ImportOptions { batch_size, ..ImportOptions::default() }
}

fn generated(sellers: u64, seed: u64, format: Format) -> Vec<u8> {
    let (_, bytes) = cli::generate(&GenerateOptions { sellers, seed, as_of: AS_OF, format }, Vec::new()).unwrap();
    bytes
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn export(settings: &Settings, format: Format) -> Vec<u8> {
    cli::export(settings, format, Vec::new()).await.unwrap().1
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data").join(name)
}

fn lines_and_fields(report: &ImportReport) -> Vec<(u64, &str)> {
    report.errors.iter().map(|e| (e.line, e.field.as_str())).collect()
}

#[test]
fn generate_is_deterministic_given_the_seed() {
    let a = generated(500, 9, Format::Csv);
    assert_eq!(a, generated(500, 9, Format::Csv));
    assert_ne!(a, generated(500, 10, Format::Csv));
    let text = String::from_utf8(a).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("seller,")).count(), 500);
    // The mix the generator promises: suspended sellers, sellers without a contract, several
    // countries, and contracts with and without IDENTIFIER_PROTECTION.
    assert!(text.contains(",SUSPENDED,"));
    assert!(text.contains(",CN,") && text.contains(",US,") && text.contains(",JP,"));
    let contracts = text.lines().filter(|l| l.starts_with("attestation,")).count();
    assert!((400..600).contains(&contracts), "{contracts}");
    assert!(text.lines().filter(|l| l.starts_with("attestation,")).any(|l| !l.contains("IDENTIFIER_PROTECTION")));
}

/// generate → import → export gives back the generated file; importing the export changes nothing;
/// and an export imported into an empty database exports the same again, across formats.
async fn import_and_export_round_trip(backend: Backend) {
    let Some(mut db) = TestDb::new(backend).await else { return };
    let Some(mut fresh) = TestDb::new(backend).await else { return };
    let (settings, fresh_settings) = (test_settings(&db), test_settings(&fresh));
    let dir = tempfile::tempdir().unwrap();
    let csv = generated(300, 42, Format::Csv);
    let (summary, _) =
        cli::generate(&GenerateOptions { sellers: 300, seed: 42, as_of: AS_OF, format: Format::Csv }, Vec::new())
            .unwrap();

    // Batches of 64 rows: several transactions, one of them partial.
    let first = cli::import(&settings, &write(dir.path(), "g.csv", &csv), &options(64)).await.unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.rows, summary.sellers + summary.attestations);
    assert_eq!(first.sellers_created, 300);
    assert_eq!(first.attestations_created as u64, summary.attestations);
    assert_eq!(first.revision, first.rows as i64, "one event per created entity");

    let exported = export(&settings, Format::Csv).await;
    assert_eq!(String::from_utf8(exported.clone()).unwrap(), String::from_utf8(csv.clone()).unwrap());

    let again = cli::import(&settings, &write(dir.path(), "e.csv", &exported), &options(1000)).await.unwrap();
    assert!(again.changed_nothing() && again.errors.is_empty(), "{again}");
    assert_eq!((again.sellers_unchanged, again.attestations_unchanged), (300, first.attestations_created));
    assert_eq!(again.revision, first.revision);
    assert_eq!(export(&settings, Format::Csv).await, exported);

    // JSON Lines out of one database, into an empty one, and CSV out of that: the same file.
    let jsonl = export(&settings, Format::Jsonl).await;
    assert_eq!(jsonl, generated(300, 42, Format::Jsonl));
    let moved = cli::import(&fresh_settings, &write(dir.path(), "e.jsonl", &jsonl), &options(1000)).await.unwrap();
    assert!(moved.errors.is_empty(), "{:?}", moved.errors);
    assert_eq!(moved.sellers_created, 300);
    assert_eq!(export(&fresh_settings, Format::Csv).await, csv);
    db.drop_now().await;
    fresh.drop_now().await;
}
on_both!(import_and_export_round_trip);

const CLAUSES: &str = "PURPOSE_LIMITATION;DATA_MINIMIZATION;SECURITY_SAFEGUARDS;RETENTION_AND_DELETION;\
ONWARD_TRANSFER_RESTRICTION;SUPERVISION_AND_AUDIT;BREACH_NOTIFICATION;GRIEVANCE_AND_DISPUTE_RESOLUTION;\
DATA_SUBJECT_RIGHTS;LIABILITY_AND_COMPENSATION;SUSPENSION_AND_TERMINATION;PIPA_COMPLIANCE_UNDERTAKING";

fn bad_csv() -> String {
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let times = "2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,2099-01-01T00:00:00Z";
    // No status or retention_days column: columns a file does not need may be left out.
    [
        "type,seller_id,legal_name,country,role,contact_email,privacy_contact,contract_ref,document_sha256,clauses,purposes,categories,signed_time,effective_time,expire_time,signatory".to_owned(),
        "seller,ok-1,\"Multi".to_owned(),
        "line Name Ltd\",CN,RECIPIENT,legal@ok1.example,privacy@ok1.example,,,,,,,,,".to_owned(),
        "seller,bad id,Bad Id Ltd,CN,RECIPIENT,legal@x.example,privacy@x.example,,,,,,,,,".to_owned(),
        format!("attestation,ok-1,,,,,,DPA-1,{a},{CLAUSES},ORDER_FULFILLMENT,RECIPIENT_NAME,{times},Jane Kim"),
        format!("attestation,ok-1,,,,,,DPA-2,nothex,{CLAUSES},ORDER_FULFILLMENT,RECIPIENT_NAME,yesterday,2025-01-01T00:00:00Z,2099-01-01T00:00:00Z,Jane Kim"),
        "seller,ok-2,Two Ltd,US,RECIPIENT,legal@two.example".to_owned(),
        "seller,ok-3,Three Ltd,JP,RECIPIENT,legal@three.example,privacy@three.example,DPA-9,,,,,,,,".to_owned(),
        format!("attestation,nobody,,,,,,DPA-3,{b},{CLAUSES},ORDER_FULFILLMENT,RECIPIENT_NAME,{times},Jane Kim"),
        "widget,ok-4,,,,,,,,,,,,,,".to_owned(),
        "seller,ok-5,Five SAS,FR,ENTRUSTEE,legal@five.example,privacy@five.example,,,,,,,,,".to_owned(),
    ]
    .join("\n")
        + "\n"
}

fn bad_jsonl() -> String {
    let seller = r#"{"type":"seller","seller_id":"j-1","legal_name":"J One","country":"KR","role":"RECIPIENT","contact_email":"a@j.example","privacy_contact":"p@j.example"}"#;
    let clauses: Vec<&str> = CLAUSES.split(';').collect();
    let att = |doc: char, extra: &str| {
        format!(
            r#"{{"type":"attestation","seller_id":"j-1","contract_ref":"C","document_sha256":"{}","clauses":{},"purposes":["ORDER_FULFILLMENT"],"categories":["RECIPIENT_NAME"],"signed_time":"2025-01-01T00:00:00Z","effective_time":"2025-01-01T09:00:00+09:00","expire_time":"2099-01-01T00:00:00.5Z","signatory":"S"{extra}}}"#,
            doc.to_string().repeat(64),
            serde_json::to_string(&clauses).unwrap()
        )
    };
    [
        seller.to_owned(),
        String::new(),
        r#"{"type":"seller","seller_id":"j-2","legal_name":"J Two","contry":"CN","role":"RECIPIENT","contact_email":"a@j2.example","privacy_contact":"p"}"#.to_owned(),
        "{not json".to_owned(),
        att('1', "").replace(r#""purposes":["ORDER_FULFILLMENT"]"#, r#""purposes":"ORDER_FULFILLMENT""#),
        att('2', r#","retention_days":-5"#),
        att('3', r#","retention_days":40000"#),
        "[1,2]".to_owned(),
        r#"{"seller_id":"x"}"#.to_owned(),
        att('4', r#","retention_days":30"#),
    ]
    .join("\n")
        + "\n"
}

/// Bad rows are reported with their line (as an editor numbers it) and field; the rest is imported.
async fn bad_rows_are_reported_by_line_and_the_rest_imported(backend: Backend) {
    let Some(mut db) = TestDb::new(backend).await else { return };
    let settings = test_settings(&db);
    let dir = tempfile::tempdir().unwrap();

    // Batches of 2 valid rows, so the store's own errors (an unknown seller) come back from a later
    // batch than the one that started the file.
    let r = cli::import(&settings, &write(dir.path(), "bad.csv", bad_csv().as_bytes()), &options(2)).await.unwrap();
    assert_eq!(
        lines_and_fields(&r),
        vec![
            // A quoted name spanning two lines is one row (lines 2-3), reported at its first line;
            // a line break is a control character, which no name may hold.
            (2, "legal_name"),
            (4, "seller_id"),
            // So its attestation names a seller that was never registered.
            (5, "seller_id"),
            (6, "signed_time"),
            (6, "document_sha256"),
            (7, ""),
            (8, "contract_ref"),
            (9, "seller_id"),
            (10, "type")
        ],
        "{:#?}",
        r.errors
    );
    assert_eq!((r.rows, r.failed_rows()), (9, 8));
    assert_eq!((r.sellers_created, r.attestations_created), (1, 0));

    let r =
        cli::import(&settings, &write(dir.path(), "bad.ndjson", bad_jsonl().as_bytes()), &options(2)).await.unwrap();
    assert_eq!(
        lines_and_fields(&r),
        vec![
            (3, "contry"),
            (3, "country"),
            (4, ""),
            (5, "purposes"),
            (6, "retention_days"),
            (7, "retention_days"),
            (8, ""),
            (9, "type")
        ],
        "{:#?}",
        r.errors
    );
    assert_eq!((r.rows, r.failed_rows()), (9, 7));
    assert_eq!((r.sellers_created, r.attestations_created), (1, 1));

    // The shipped examples carry four bad rows on purpose; docs/import-format.md shows this report.
    let r = cli::import(&settings, &example("sellers.csv"), &options(1000)).await.unwrap();
    assert_eq!(
        lines_and_fields(&r),
        vec![(14, "country"), (15, "seller_id"), (16, "clauses[2]"), (16, "expire_time"), (17, "role")]
    );
    assert_eq!((r.rows, r.sellers_created, r.attestations_created), (16, 6, 6));
    let r = cli::import(&settings, &example("sellers.jsonl"), &options(1000)).await.unwrap();
    assert_eq!(
        lines_and_fields(&r),
        vec![(13, "country"), (14, "seller_id"), (15, "clauses[2]"), (15, "expire_time"), (16, "role")]
    );
    assert!(r.changed_nothing(), "the two examples hold the same data: {r}");

    // Neither a file without a known format nor an unknown column imports anything.
    let err = cli::import(&settings, &write(dir.path(), "data.txt", b"x"), &options(10)).await.unwrap_err();
    assert!(err.to_string().contains("--format"), "{err}");
    let header = write(dir.path(), "h.csv", b"type,seller_id,colour\nseller,zz,red\n");
    let err = cli::import(&settings, &header, &options(10)).await.unwrap_err();
    assert!(format!("{err:#}").contains("\"colour\""), "{err:#}");
    db.drop_now().await;
}
on_both!(bad_rows_are_reported_by_line_and_the_rest_imported);

/// What the CLI imports is served by the API: at start-up, and while running (through the event
/// log, at the revision the import reports). Revoked contracts stay out of exports.
async fn imported_data_is_served_by_the_api(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let settings = test_settings(&db);
    let report = cli::import(&settings, &example("sellers.csv"), &options(1000)).await.unwrap();
    assert_eq!(report.failed_rows(), 4);
    let mut app = TestApp::spawn_with(db, settings.clone()).await;

    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "tokyo-kitchen".into() }).await.unwrap();
    let got = got.into_inner();
    let (seller, atts) = (got.seller.unwrap(), got.attestations);
    assert_eq!((seller.status(), seller.role()), (pb::SellerStatus::Active, pb::SellerRole::Entrustee));
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].submitted_by, "cli:import");
    assert_eq!(atts[0].document_sha256, atts[0].document_sha256.to_ascii_lowercase());
    // 2025-03-01T00:00:00+09:00.
    assert_eq!(atts[0].effective_time.unwrap().seconds, 1_740_754_800);

    let rev = report.revision;
    let r = app
        .verify_at(verify("sz-bright-electronics", P::CustomsClearance, &[C::RecipientName, C::CustomsCode]), rev)
        .await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    assert_eq!(r.disclosure.unwrap().recipient_legal_name, "Shenzhen Bright Electronics Co., Ltd.");
    let r = app.verify_at(verify("sg-beauty", P::CustomerSupport, &[C::SupportMessages]), rev).await;
    assert_eq!((r.decision(), r.retention_days), (pb::Decision::Allow, 30), "the renewal is in force: {r:?}");
    for (seller_id, code) in [
        ("berlin-home", pb::ReasonCode::SellerSuspended),
        ("hk-gadgets", pb::ReasonCode::ContractMissing),
        ("summit-outdoor", pb::ReasonCode::ContractNotYetEffective),
        ("atlantis-trade", pb::ReasonCode::SellerUnknown),
    ] {
        let r = app.verify_at(verify(seller_id, P::OrderFulfillment, &[C::RecipientName]), rev).await;
        assert_eq!((r.decision(), codes(&r.reasons)), (pb::Decision::Deny, vec![code]), "{seller_id}: {r:?}");
    }

    // An import while the server runs: the decision follows once the replica reaches its revision.
    let dir = tempfile::tempdir().unwrap();
    let contract = format!(
        "{{\"type\":\"attestation\",\"seller_id\":\"hk-gadgets\",\"contract_ref\":\"DPA-HK-1\",\"document_sha256\":\"{}\",\
         \"clauses\":{},\"purposes\":[\"ORDER_FULFILLMENT\"],\"categories\":[\"RECIPIENT_NAME\"],\
         \"signed_time\":\"2025-01-01T00:00:00Z\",\"effective_time\":\"2025-01-01T00:00:00Z\",\
         \"expire_time\":\"2099-01-01T00:00:00Z\",\"signatory\":\"Chan Tai Man, Director\"}}\n",
        "c".repeat(64),
        serde_json::to_string(&CLAUSES.split(';').collect::<Vec<_>>()).unwrap()
    );
    let more =
        cli::import(&settings, &write(dir.path(), "hk.jsonl", contract.as_bytes()), &options(1000)).await.unwrap();
    assert_eq!((more.attestations_created, more.revision), (1, rev + 1));
    let r = app.verify_at(verify("hk-gadgets", P::OrderFulfillment, &[C::RecipientName]), more.revision).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");

    // A revoked contract is not exported: importing the export must not bring it back to life.
    let sz = app.registry.get_seller(pb::GetSellerRequest { seller_id: "sz-bright-electronics".into() }).await;
    let revoked = sz.unwrap().into_inner().attestations.remove(0);
    app.registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: revoked.attestation_id.clone(),
            reason: "contract terminated".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let (summary, out) = cli::export(&settings, Format::Jsonl, Vec::new()).await.unwrap();
    assert_eq!((summary.sellers, summary.attestations, summary.revoked_skipped), (6, 6, 1));
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains(&revoked.document_sha256));
    assert!(out.contains("\"seller_id\":\"sz-bright-electronics\""), "the seller itself is exported");
    app.stop().await;
}
on_both!(imported_data_is_served_by_the_api);

/// A re-import applies what changed: an updated seller is updated (twice in one batch: both apply,
/// in file order), the rest is unchanged, and a document attested twice is attested once.
async fn reimport_applies_changes_in_file_order(backend: Backend) {
    let Some(mut db) = TestDb::new(backend).await else { return };
    let settings = test_settings(&db);
    let dir = tempfile::tempdir().unwrap();
    let header = "type,seller_id,legal_name,country,role,contact_email,privacy_contact";
    let seller =
        |id: &str, name: &str| format!("seller,{id},{name},DE,RECIPIENT,legal@{id}.example,privacy@{id}.example");
    let first = [header.to_owned(), seller("u-1", "One GmbH"), seller("u-2", "Two GmbH"), seller("u-1", "One GmbH")];
    let path = write(dir.path(), "1.csv", first.join("\n").as_bytes());
    let r = cli::import(&settings, &path, &options(1000)).await.unwrap();
    assert_eq!(lines_and_fields(&r), vec![(4, "seller_id")], "a seller twice in one batch: {:?}", r.errors);
    assert_eq!(r.sellers_created, 2);

    let doc = "d".repeat(64);
    let contract = format!(
        "attestation,u-2,,,,,,DPA-U2,{doc},{CLAUSES},ORDER_FULFILLMENT,RECIPIENT_NAME,2025-01-01T00:00:00Z,\
         2025-01-01T00:00:00Z,2099-01-01T00:00:00Z,Jane Kim"
    );
    let columns = format!(
        "{header},contract_ref,document_sha256,clauses,purposes,categories,signed_time,effective_time,expire_time,signatory"
    );
    let pad = |row: String| row + ",,,,,,,,,";
    let second = [
        columns,
        pad(seller("u-1", "One Renamed GmbH")),
        pad(seller("u-1", "One Final GmbH")),
        pad(seller("u-2", "Two GmbH")),
        contract.clone(),
        contract,
    ];
    let path = write(dir.path(), "2.csv", second.join("\n").as_bytes());
    let again = cli::import(&settings, &path, &options(1000)).await.unwrap();
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!((again.sellers_updated, again.sellers_unchanged), (2, 1));
    assert_eq!((again.attestations_created, again.attestations_unchanged), (1, 1));
    assert_eq!(again.revision, r.revision + 3);
    let out = String::from_utf8(export(&settings, Format::Csv).await).unwrap();
    assert!(out.contains("seller,u-1,One Final GmbH,DE,ACTIVE,"), "{out}");
    assert_eq!(out.matches(&doc).count(), 1);
    db.drop_now().await;
}
on_both!(reimport_applies_changes_in_file_order);
