//! AuditService through the public API: the change feed, history and state as of a revision or a
//! time, tamper evidence against a database edited under the running service, decisions replayed
//! and recorded, the compliance report, the recipient register (RPC and CLI), and who may call.

use std::time::{Duration, Instant};

use safeguard::auth::Role;
use safeguard::cli::{self, RegisterFormat};
use safeguard::domain::Timestamp;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::audit_service_client::AuditServiceClient;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::both;
use crate::harness::*;

type Audit = AuditServiceClient<Authed>;

/// A client presenting a token with `roles`.
fn audit_as(app: &TestApp, sub: &str, roles: &[Role]) -> Audit {
    AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(Some(&token(sub, roles))))
}

fn auditor(app: &TestApp) -> Audit {
    audit_as(app, "auditor", &[Role::Auditor])
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().unwrap();
    t.seconds * 1_000_000 + i64::from(t.nanos / 1000)
}

fn feed(after_revision: i64) -> pb::ListRegistryEventsRequest {
    pb::ListRegistryEventsRequest { after_revision, ..Default::default() }
}

/// Every event matching `req`, following page tokens.
async fn all_pages(audit: &mut Audit, mut req: pb::ListRegistryEventsRequest) -> Vec<pb::RegistryEvent> {
    let mut out = Vec::new();
    loop {
        let page = audit.list_registry_events(req.clone()).await.unwrap().into_inner();
        if req.page_size > 0 {
            assert!(page.events.len() <= req.page_size as usize);
        }
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

fn revisions(events: &[pb::RegistryEvent]) -> Vec<i64> {
    events.iter().map(|e| e.revision).collect()
}

fn rename(id: &str, name: &str) -> pb::UpdateSellerRequest {
    pb::UpdateSellerRequest {
        seller: Some(pb::Seller { seller_id: id.into(), legal_name: name.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["legal_name".into()] }),
        request_id: String::new(),
    }
}

fn revoke(attestation_id: &str) -> pb::RevokeAttestationRequest {
    pb::RevokeAttestationRequest {
        attestation_id: attestation_id.into(),
        reason: "contract terminated".into(),
        request_id: String::new(),
    }
}

both!(change_feed_filters_and_pages_oldest_first, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    app.create_seller(seller("bolt")).await;
    let (_, _) = app.attest(attestation("acme", 1)).await;
    // A second writer: events record who wrote them.
    let (_, mut legal) = app.clients_as(Some(&token("legal-kim", &[Role::Legal])));
    legal.update_seller(rename("acme", "Acme Holdings")).await.unwrap();
    legal
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("bolt", 2)),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut audit = auditor(&app);

    let all = all_pages(&mut audit, feed(0)).await;
    assert_eq!(revisions(&all), vec![1, 2, 3, 4, 5]);
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["SELLER_CREATED", "SELLER_CREATED", "ATTESTATION_SUBMITTED", "SELLER_UPDATED", "ATTESTATION_SUBMITTED"]
    );
    assert_eq!(all[3].actor, "legal-kim");
    assert_eq!(all[0].actor, "test-admin");
    assert!(all[3].payload.contains("Acme Holdings"), "the payload is the entity after the change");
    assert_eq!(all[0].prev_hash, "0".repeat(64));
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "each event chains to the one before");
    }

    let paged = all_pages(&mut audit, pb::ListRegistryEventsRequest { page_size: 2, ..feed(0) }).await;
    assert_eq!(paged, all, "pages of 2 give the same feed");
    assert_eq!(revisions(&all_pages(&mut audit, feed(3)).await), vec![4, 5]);

    let by_seller = pb::ListRegistryEventsRequest { seller_id: "acme".into(), page_size: 1, ..feed(0) };
    assert_eq!(revisions(&all_pages(&mut audit, by_seller.clone()).await), vec![1, 3, 4]);
    let by_kind = pb::ListRegistryEventsRequest { kind: "ATTESTATION_SUBMITTED".into(), ..feed(0) };
    assert_eq!(revisions(&all_pages(&mut audit, by_kind.clone()).await), vec![3, 5]);
    let by_actor = pb::ListRegistryEventsRequest { actor: "legal-kim".into(), ..feed(0) };
    assert_eq!(revisions(&all_pages(&mut audit, by_actor).await), vec![4, 5]);
    let combined = pb::ListRegistryEventsRequest { seller_id: "bolt".into(), actor: "legal-kim".into(), ..feed(0) };
    assert_eq!(revisions(&all_pages(&mut audit, combined).await), vec![5]);

    // [start, end): from the third event's time up to (not including) the fifth's.
    let (start, end) = (all[2].time, all[4].time);
    let expected: Vec<i64> = all
        .iter()
        .filter(|e| micros(&e.time) >= micros(&start) && micros(&e.time) < micros(&end))
        .map(|e| e.revision)
        .collect();
    let window = pb::ListRegistryEventsRequest { start_time: start, end_time: end, ..feed(0) };
    let got = revisions(&all_pages(&mut audit, window).await);
    assert_eq!(got, expected);
    assert!(got.contains(&3) && !got.contains(&5));

    // A page token continues only the query it came from.
    let first = audit.list_registry_events(by_seller).await.unwrap().into_inner();
    assert!(!first.next_page_token.is_empty());
    let err = audit
        .list_registry_events(pb::ListRegistryEventsRequest { page_token: first.next_page_token, ..by_kind })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), vec!["page_token"]);
    let bad = |req: pb::ListRegistryEventsRequest| {
        let mut audit = audit.clone();
        async move { violated_fields(&audit.list_registry_events(req).await.unwrap_err()) }
    };
    assert_eq!(bad(pb::ListRegistryEventsRequest { page_size: 1001, ..feed(0) }).await, vec!["page_size"]);
    assert_eq!(bad(pb::ListRegistryEventsRequest { page_size: -1, ..feed(0) }).await, vec!["page_size"]);
    assert_eq!(bad(pb::ListRegistryEventsRequest { kind: "SELLER_DELETED".into(), ..feed(0) }).await, vec!["kind"]);
    assert_eq!(bad(feed(-1)).await, vec!["after_revision"]);
    assert_eq!(
        bad(pb::ListRegistryEventsRequest { page_token: "garbage".into(), ..feed(0) }).await,
        vec!["page_token"]
    );
    let reversed = pb::ListRegistryEventsRequest { start_time: end, end_time: start, ..feed(0) };
    if micros(&start) != micros(&end) {
        assert_eq!(bad(reversed).await, vec!["end_time"]);
    }
    app
});

both!(history_and_as_of_show_the_seller_as_it_stood, |mut app: TestApp| async move {
    let r1 = app.create_seller(seller("acme")).await;
    let (att, r2) = app.attest(attestation("acme", 1)).await;
    app.create_seller(seller("other")).await;
    let r4 = app.registry.update_seller(rename("acme", "Acme Holdings")).await.unwrap().into_inner().revision;
    let r5 = app.registry.revoke_attestation(revoke(&att.attestation_id)).await.unwrap().into_inner().revision;
    let supervision = pb::Supervision {
        seller_id: "acme".into(),
        kind: pb::SupervisionKind::Inspection as i32,
        time: days_from_now(-1),
        evidence_sha256: "cd".repeat(32),
        ..Default::default()
    };
    let r6 = app
        .registry
        .record_supervision(pb::RecordSupervisionRequest { supervision: Some(supervision), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let mut audit = auditor(&app);

    let history =
        audit.get_seller_history(pb::GetSellerHistoryRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    let seen: Vec<(i64, &str)> = history.versions.iter().map(|v| (v.revision, v.kind.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            (r1, "SELLER_CREATED"),
            (r2, "ATTESTATION_SUBMITTED"),
            (r4, "SELLER_UPDATED"),
            (r5, "ATTESTATION_REVOKED"),
            (r6, "SUPERVISION_RECORDED"),
        ]
    );
    let v = &history.versions;
    assert!(v.iter().all(|v| v.actor == "test-admin" && v.time.is_some()));
    assert_eq!(v[0].seller.as_ref().unwrap().legal_name, "acme Trading Co., Ltd.");
    assert_eq!(v[2].seller.as_ref().unwrap().legal_name, "Acme Holdings");
    assert_eq!(v[1].attestation.as_ref().unwrap().state(), pb::AttestationState::Active);
    assert_eq!(v[3].attestation.as_ref().unwrap().state(), pb::AttestationState::Revoked);
    assert_eq!(v[4].supervision.as_ref().unwrap().evidence_sha256, "cd".repeat(32));
    assert!(v[0].attestation.is_none() && v[0].supervision.is_none());
    let err = audit.get_seller_history(pb::GetSellerHistoryRequest { seller_id: "ghost".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let as_of = |revision: i64, time: Option<prost_types::Timestamp>| pb::GetSellerAsOfRequest {
        seller_id: "acme".into(),
        time,
        revision,
    };
    let at1 = audit.get_seller_as_of(as_of(r1, None)).await.unwrap().into_inner();
    assert_eq!(at1.seller.unwrap().legal_name, "acme Trading Co., Ltd.");
    assert!(at1.attestations.is_empty());
    assert_eq!(at1.revision, r1);
    let at2 = audit.get_seller_as_of(as_of(r4 - 1, None)).await.unwrap().into_inner();
    assert_eq!(at2.seller.unwrap().legal_name, "acme Trading Co., Ltd.", "before the update");
    assert_eq!(at2.attestations.len(), 1);
    assert_eq!(at2.attestations[0].state(), pb::AttestationState::Active);
    assert_eq!(at2.revision, r2, "the last revision of the seller included");
    let at5 = audit.get_seller_as_of(as_of(r5, None)).await.unwrap().into_inner();
    assert_eq!(at5.seller.unwrap().legal_name, "Acme Holdings");
    assert_eq!(at5.attestations[0].state(), pb::AttestationState::Revoked);
    // By time: the creation event's time shows the seller as created; a time before it, nothing.
    let created_at = v[0].time;
    let by_time = audit.get_seller_as_of(as_of(0, created_at)).await.unwrap().into_inner();
    assert_eq!(by_time.seller.unwrap().legal_name, "acme Trading Co., Ltd.");
    let now = audit.get_seller_as_of(as_of(0, days_from_now(1))).await.unwrap().into_inner();
    assert_eq!(now.seller.unwrap().legal_name, "Acme Holdings");
    assert_eq!(now.revision, r6);
    let before = prost_types::Timestamp { seconds: created_at.unwrap().seconds - 60, nanos: 0 };
    let err = audit.get_seller_as_of(as_of(0, Some(before))).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = audit
        .get_seller_as_of(pb::GetSellerAsOfRequest { seller_id: "other".into(), time: None, revision: r1 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "the other seller did not exist at r1");
    // Exactly one of time and revision.
    let err = audit.get_seller_as_of(as_of(r1, created_at)).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["time"]);
    let err = audit.get_seller_as_of(as_of(0, None)).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["time"]);
    app
});

/// A few events to tamper with: three sellers and two attestations (revisions 1 to 5).
async fn five_events(app: &mut TestApp) -> pb::VerifyAuditChainResponse {
    app.create_seller(seller("acme")).await;
    app.create_seller(seller("bolt")).await;
    app.attest(attestation("acme", 1)).await;
    app.create_seller(seller("cargo")).await;
    app.attest(attestation("bolt", 2)).await;
    let intact = auditor(app).verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(intact.ok, "{intact:?}");
    assert_eq!((intact.head_revision, intact.events_checked, intact.first_broken_revision), (5, 5, 0));
    assert!(intact.problem.is_empty());
    let last = auditor(app).list_registry_events(feed(4)).await.unwrap().into_inner().events;
    assert_eq!(intact.head_hash, last[0].hash);
    intact
}

async fn chain(app: &TestApp) -> pb::VerifyAuditChainResponse {
    auditor(app).verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner()
}

both!(an_empty_registry_has_an_intact_chain, |app: TestApp| async move {
    let r = chain(&app).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.head_revision, r.events_checked, r.head_hash), (0, 0, "0".repeat(64)));
    app
});

both!(an_edited_payload_breaks_the_chain_at_its_revision, |mut app: TestApp| async move {
    five_events(&mut app).await;
    app.db
        .execute("UPDATE registry_events SET payload = replace(payload, 'Trading', 'Tradinq') WHERE revision = 4")
        .await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!(r.first_broken_revision, 4, "{r:?}");
    assert!(r.problem.contains("edited"), "{r:?}");
    assert_eq!(r.head_revision, 5);
    app
});

both!(a_deleted_event_breaks_the_chain, |mut app: TestApp| async move {
    five_events(&mut app).await;
    app.db.execute("DELETE FROM registry_events WHERE revision = 2").await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!(r.first_broken_revision, 2, "{r:?}");
    assert!(r.problem.contains("missing"), "{r:?}");
    app
});

both!(a_deleted_last_event_no_longer_matches_the_head, |mut app: TestApp| async move {
    five_events(&mut app).await;
    app.db.execute("DELETE FROM registry_events WHERE revision = 5").await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!((r.first_broken_revision, r.events_checked), (5, 4), "{r:?}");
    app
});

both!(swapped_payloads_and_hashes_break_the_chain, |mut app: TestApp| async move {
    five_events(&mut app).await;
    // Rows 2 and 3 trade their payloads and hashes, through a scratch row.
    let columns = "revision, time, actor, kind, seller_id, payload, prev_hash, hash";
    app.db
        .execute(&format!(
            "INSERT INTO registry_events ({columns}) SELECT -1, time, actor, kind, seller_id, payload, prev_hash, hash \
             FROM registry_events WHERE revision = 2"
        ))
        .await;
    for (to, from) in [(2, 3), (3, -1)] {
        app.db
            .execute(&format!(
                "UPDATE registry_events SET \
                 payload = (SELECT e.payload FROM registry_events e WHERE e.revision = {from}), \
                 hash = (SELECT e.hash FROM registry_events e WHERE e.revision = {from}) \
                 WHERE revision = {to}"
            ))
            .await;
    }
    app.db.execute("DELETE FROM registry_events WHERE revision = -1").await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!(r.first_broken_revision, 2, "{r:?}");
    app
});

both!(reordered_events_break_the_chain, |mut app: TestApp| async move {
    five_events(&mut app).await;
    // Rows 3 and 4 trade places: each row keeps its content, under the other's revision.
    app.db.execute("UPDATE registry_events SET revision = -4 WHERE revision = 4").await;
    app.db.execute("UPDATE registry_events SET revision = 4 WHERE revision = 3").await;
    app.db.execute("UPDATE registry_events SET revision = 3 WHERE revision = -4").await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!(r.first_broken_revision, 3, "{r:?}");
    assert!(r.problem.contains("reordered"), "{r:?}");
    app
});

both!(a_forged_head_does_not_match_the_last_event, |mut app: TestApp| async move {
    five_events(&mut app).await;
    app.db.execute(&format!("UPDATE registry_head SET hash = '{}' WHERE id = 1", "f".repeat(64))).await;
    let r = chain(&app).await;
    assert!(!r.ok);
    assert_eq!((r.first_broken_revision, r.head_hash.clone()), (5, "f".repeat(64)), "{r:?}");
    app
});

both!(explain_replays_a_decision_made_before_a_revocation, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (att, attested) = app.attest(attestation("acme", 1)).await;
    let request = verify("acme", P::OrderFulfillment, &[C::RecipientName, C::ShippingAddress]);
    let before = app.verify_at(request.clone(), attested).await;
    assert_eq!(before.decision(), pb::Decision::Allow);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let revoked = app.registry.revoke_attestation(revoke(&att.attestation_id)).await.unwrap().into_inner().revision;
    let now = app.verify_at(request.clone(), revoked).await;
    assert_eq!(now.decision(), pb::Decision::Deny);
    assert_eq!(codes(&now.reasons), vec![pb::ReasonCode::ContractRevoked]);

    let mut audit = auditor(&app);
    let explain = |time| pb::ExplainDecisionRequest { request: Some(request.clone()), time };
    let then = audit.explain_decision(explain(before.decision_time)).await.unwrap().into_inner();
    assert_eq!(then.revision, attested);
    assert_eq!(then.policy_version, before.policy_version);
    let replayed = then.response.unwrap();
    assert_eq!(replayed.decision(), pb::Decision::Allow);
    assert_eq!(replayed.allowed_categories, before.allowed_categories);
    assert_eq!(replayed.attestation_ids, vec![att.attestation_id.clone()]);
    assert_eq!(replayed.retention_days, before.retention_days);
    assert_eq!(replayed.disclosure, before.disclosure);
    assert_eq!(replayed.revision, attested);
    assert_eq!(replayed.decision_time, before.decision_time, "decided as of the time asked");
    assert!(replayed.decision_id.starts_with("explain-"), "{}", replayed.decision_id);
    assert_ne!(replayed.decision_id, before.decision_id);

    let later = audit.explain_decision(explain(now.decision_time)).await.unwrap().into_inner();
    assert_eq!(later.revision, revoked);
    let later = later.response.unwrap();
    assert_eq!(later.decision(), pb::Decision::Deny);
    assert_eq!(codes(&later.reasons), vec![pb::ReasonCode::ContractRevoked]);

    let long_ago = Some(prost_types::Timestamp { seconds: before.decision_time.unwrap().seconds - 3600, nanos: 0 });
    let early = audit.explain_decision(explain(long_ago)).await.unwrap().into_inner();
    assert_eq!(early.revision, 0);
    assert_eq!(codes(&early.response.unwrap().reasons), vec![pb::ReasonCode::SellerUnknown]);

    let err = audit.explain_decision(explain(None)).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["time"]);
    let mut bad = request.clone();
    bad.seller_id = "not a seller id".into();
    bad.categories.clear();
    let err = audit.explain_decision(pb::ExplainDecisionRequest { request: Some(bad), time: now.decision_time }).await;
    assert_eq!(violated_fields(&err.unwrap_err()), vec!["request.seller_id", "request.categories"]);
    let err = audit.explain_decision(pb::ExplainDecisionRequest { request: None, time: now.decision_time }).await;
    assert_eq!(violated_fields(&err.unwrap_err()), vec!["request"]);
    app
});

/// Decision records are written off the hot path: waits until `n` are listed.
async fn wait_for_records(audit: &mut Audit, n: usize) -> Vec<pb::DecisionRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = audit
            .list_decisions(pb::ListDecisionsRequest { page_size: 1000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .decisions;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both!(decision_records_are_listed_paged_and_fetched, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (_, revision) = app.attest(attestation("acme", 1)).await;
    let allow = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), revision).await;
    let partial = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName, C::Email]), revision).await;
    let unknown = app.verify_at(verify("ghost", P::OrderFulfillment, &[C::RecipientName]), revision).await;
    assert_eq!(
        (allow.decision(), partial.decision(), unknown.decision()),
        (pb::Decision::Allow, pb::Decision::AllowPartial, pb::Decision::Deny)
    );
    let mut audit = auditor(&app);
    let all = wait_for_records(&mut audit, 3).await;
    assert_eq!(all.len(), 3, "{all:?}");
    let ids: Vec<&str> = all.iter().map(|r| r.decision_id.as_str()).collect();
    assert_eq!(ids, vec![&allow.decision_id, &partial.decision_id, &unknown.decision_id], "oldest first");
    let p = &all[1];
    assert_eq!((p.seller_id.as_str(), p.caller.as_str()), ("acme", "test-admin"));
    assert_eq!(
        (p.purpose(), p.basis(), p.decision()),
        (P::OrderFulfillment, pb::TransferBasis::SeparateConsent, pb::Decision::AllowPartial)
    );
    assert_eq!(p.categories, vec![C::RecipientName as i32, C::Email as i32]);
    assert_eq!(p.allowed_categories, partial.allowed_categories);
    assert_eq!(p.denied_categories, partial.denied_categories);
    assert_eq!((p.revision, p.policy_version.as_str()), (partial.revision, partial.policy_version.as_str()));
    assert_eq!(p.basis_evidence_ref, "consent-123");

    // Pages of one, continued by token, give the same records.
    let mut paged = Vec::new();
    let mut req = pb::ListDecisionsRequest { page_size: 1, ..Default::default() };
    loop {
        let page = audit.list_decisions(req.clone()).await.unwrap().into_inner();
        assert!(page.decisions.len() <= 1);
        paged.extend(page.decisions);
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    assert_eq!(paged, all);

    let only = |req: pb::ListDecisionsRequest| {
        let mut audit = audit.clone();
        async move {
            let got = audit.list_decisions(req).await.unwrap().into_inner().decisions;
            got.into_iter().map(|r| r.decision_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(pb::ListDecisionsRequest { seller_id: "ghost".into(), ..Default::default() }).await,
        vec![unknown.decision_id.clone()]
    );
    let denied = pb::ListDecisionsRequest { decision: pb::Decision::Deny as i32, ..Default::default() };
    assert_eq!(only(denied).await, vec![unknown.decision_id.clone()]);
    let since_partial = pb::ListDecisionsRequest { start_time: all[1].time, ..Default::default() };
    assert!(only(since_partial).await.contains(&partial.decision_id));
    let until_partial = pb::ListDecisionsRequest { end_time: all[1].time, ..Default::default() };
    assert!(!only(until_partial).await.contains(&partial.decision_id), "end_time is exclusive");

    let got = audit.get_decision(pb::GetDecisionRequest { decision_id: partial.decision_id.clone() }).await;
    assert_eq!(got.unwrap().into_inner(), all[1]);
    let err = audit.get_decision(pb::GetDecisionRequest { decision_id: "no-such-decision".into() }).await;
    assert_eq!(err.unwrap_err().code(), Code::NotFound);
    let err = audit.get_decision(pb::GetDecisionRequest { decision_id: String::new() }).await;
    assert_eq!(violated_fields(&err.unwrap_err()), vec!["decision_id"]);

    let first = audit
        .list_decisions(pb::ListDecisionsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let err = audit
        .list_decisions(pb::ListDecisionsRequest {
            page_size: 1,
            seller_id: "acme".into(),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), vec!["page_token"]);
    let err = audit.list_decisions(pb::ListDecisionsRequest { decision: 99, ..Default::default() }).await;
    assert_eq!(violated_fields(&err.unwrap_err()), vec!["decision"]);
    let err = audit.list_decisions(pb::ListDecisionsRequest { page_size: 1001, ..Default::default() }).await;
    assert_eq!(violated_fields(&err.unwrap_err()), vec!["page_size"]);
    app
});

/// An attestation covering every purpose the default policy allows and every category it permits,
/// with `clauses`, expiring in `days`.
fn full_attestation(seller_id: &str, doc: u8, clauses: Vec<i32>, days: i64) -> pb::Attestation {
    use pb::DataCategory::*;
    pb::Attestation {
        clauses,
        purposes: [P::OrderFulfillment, P::CustomsClearance, P::CustomerSupport, P::ReturnsRefunds]
            .iter()
            .map(|p| *p as i32)
            .collect(),
        categories: [
            RecipientName,
            PhoneNumber,
            ShippingAddress,
            OrderContents,
            PlatformBuyerId,
            CustomsCode,
            DateOfBirth,
            SupportMessages,
        ]
        .iter()
        .map(|c| *c as i32)
        .collect(),
        expire_time: days_from_now(days),
        ..attestation(seller_id, doc)
    }
}

fn every_clause() -> Vec<i32> {
    let mut c = baseline_clauses();
    c.push(pb::Clause::IdentifierProtection as i32);
    c
}

fn without(clauses: Vec<i32>, clause: pb::Clause) -> Vec<i32> {
    clauses.into_iter().filter(|c| *c != clause as i32).collect()
}

/// A registry with one seller in each standing. Returns the revision after the last write.
///
/// | seller    | country | standing    | why                                              |
/// |-----------|---------|-------------|--------------------------------------------------|
/// | cn-full   | CN      | allowed     | every clause, purpose and category               |
/// | cn-soon   | CN      | allowed     | the same, expiring in 10 days                    |
/// | cn-part   | CN      | partial     | no IDENTIFIER_PROTECTION: customs code and DOB   |
/// | cn-nogrv  | CN      | denied      | no GRIEVANCE_AND_DISPUTE_RESOLUTION (baseline)   |
/// | us-nogrv  | US      | denied      | the same                                         |
/// | us-bare   | US      | no_contract | no attestation                                   |
/// | us-susp   | US      | suspended   | status SUSPENDED                                 |
/// | jp-order  | JP      | suspended   | a suspension order on every category             |
async fn one_of_each(app: &mut TestApp) -> i64 {
    let in_country = |id: &str, country: &str| pb::Seller { country: country.into(), ..seller(id) };
    for (id, country) in [
        ("cn-full", "CN"),
        ("cn-soon", "CN"),
        ("cn-part", "CN"),
        ("cn-nogrv", "CN"),
        ("us-nogrv", "US"),
        ("us-bare", "US"),
        ("jp-order", "JP"),
    ] {
        app.create_seller(in_country(id, country)).await;
    }
    app.create_seller(pb::Seller { status: pb::SellerStatus::Suspended as i32, ..in_country("us-susp", "US") }).await;
    let grievance = pb::Clause::GrievanceAndDisputeResolution;
    app.attest(full_attestation("cn-full", 1, every_clause(), 365)).await;
    app.attest(full_attestation("cn-soon", 2, every_clause(), 10)).await;
    app.attest(full_attestation("cn-part", 3, baseline_clauses(), 365)).await;
    app.attest(full_attestation("cn-nogrv", 4, without(every_clause(), grievance), 365)).await;
    app.attest(full_attestation("us-nogrv", 5, without(every_clause(), grievance), 365)).await;
    app.attest(full_attestation("us-susp", 6, every_clause(), 365)).await;
    app.attest(full_attestation("jp-order", 7, every_clause(), 365)).await;
    let order = pb::SuspensionOrder {
        order_ref: "PIPC-2026-7".into(),
        seller_id: "jp-order".into(),
        effective_time: days_from_now(-1),
        ..Default::default()
    };
    let revision = app
        .registry
        .create_suspension_order(pb::CreateSuspensionOrderRequest { order: Some(order), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
        .revision;
    // The reports read the snapshot: let it reach the last write.
    app.verify_at(verify("cn-full", P::OrderFulfillment, &[C::RecipientName]), revision).await;
    revision
}

both!(compliance_report_counts_sellers_by_country_and_missing_clauses, |mut app: TestApp| async move {
    let revision = one_of_each(&mut app).await;
    let mut audit = auditor(&app);
    let report = audit
        .get_compliance_report(pb::GetComplianceReportRequest { expiring_within_days: 0 })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(&str, [i64; 5])> = report
        .countries
        .iter()
        .map(|c| (c.country.as_str(), [c.allowed, c.partial, c.denied, c.suspended, c.no_contract]))
        .collect();
    // [allowed, partial, denied, suspended, no_contract]
    assert_eq!(counts, vec![("CN", [2, 1, 1, 0, 0]), ("JP", [0, 0, 0, 1, 0]), ("US", [0, 0, 1, 1, 1])]);
    let missing: Vec<(pb::Clause, i64)> = report.missing_clauses.iter().map(|c| (c.clause(), c.sellers)).collect();
    assert_eq!(missing, vec![(pb::Clause::GrievanceAndDisputeResolution, 2), (pb::Clause::IdentifierProtection, 1)]);
    let expiring: Vec<&str> = report.expiring.iter().map(|e| e.seller_id.as_str()).collect();
    assert_eq!(expiring, vec!["cn-soon"], "30 days by default");
    assert!(report.expiring[0].expire_time.is_some() && !report.expiring[0].attestation_id.is_empty());
    assert_eq!(report.revision, revision);
    assert!(!report.policy_version.is_empty() && report.time.is_some());

    let wider = audit
        .get_compliance_report(pb::GetComplianceReportRequest { expiring_within_days: 400 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wider.expiring.len(), 7, "every contract in force");
    assert_eq!(wider.expiring[0].seller_id, "cn-soon", "soonest first");
    let times: Vec<i64> = wider.expiring.iter().map(|e| micros(&e.expire_time)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    app
});

both!(recipient_register_lists_the_sellers_that_may_receive_data, |mut app: TestApp| async move {
    one_of_each(&mut app).await;
    let mut audit = auditor(&app);
    let mut stream = audit.export_recipient_register(pb::ExportRecipientRegisterRequest {}).await.unwrap().into_inner();
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await {
        entries.push(entry.unwrap());
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.seller_id.as_str()).collect();
    assert_eq!(ids, vec!["cn-full", "cn-part", "cn-soon"], "allowed and partial sellers, in seller-id order");
    let full = &entries[0];
    assert_eq!(full.legal_name, "cn-full Trading Co., Ltd.");
    assert_eq!(full.privacy_contact, "privacy@cn-full.example");
    assert_eq!(full.country, "CN");
    let purposes: Vec<(P, u32)> = full.purposes.iter().map(|p| (p.purpose(), p.retention_days)).collect();
    // Retention: the policy's per purpose, capped by the contract's 60 days.
    assert_eq!(
        purposes,
        vec![(P::OrderFulfillment, 60), (P::CustomsClearance, 30), (P::CustomerSupport, 60), (P::ReturnsRefunds, 60)]
    );
    let customs = |e: &pb::RecipientEntry| {
        e.purposes.iter().find(|p| p.purpose() == P::CustomsClearance).unwrap().categories.clone()
    };
    assert!(customs(full).contains(&(C::CustomsCode as i32)));
    let part = customs(&entries[1]);
    assert!(!part.contains(&(C::CustomsCode as i32)) && !part.contains(&(C::DateOfBirth as i32)));
    assert!(part.contains(&(C::RecipientName as i32)));
    assert!(entries.iter().all(|e| e.purposes.iter().all(|p| p.purpose() != P::Marketing)));

    // `safeguard register` writes the same register from the database.
    let settings = test_settings(&app.db);
    let (summary, json) = cli::register(&settings, RegisterFormat::Json, Timestamp::now(), Vec::new()).await.unwrap();
    assert_eq!((summary.recipients, summary.sellers), (3, 8));
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let listed: Vec<&str> = doc.as_array().unwrap().iter().map(|e| e["seller_id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    assert_eq!(doc[0]["purposes"][0]["purpose"], "ORDER_FULFILLMENT");
    assert_eq!(doc[0]["purposes"][0]["retention_days"], 60);
    let (_, csv) = cli::register(&settings, RegisterFormat::Csv, Timestamp::now(), Vec::new()).await.unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), cli::REGISTER_COLUMNS.join(","));
    let rows: Vec<&str> = lines.collect();
    let purposes_listed: usize = entries.iter().map(|e| e.purposes.len()).sum();
    assert_eq!(rows.len(), purposes_listed, "one row per seller and purpose");
    assert!(rows[0].starts_with("cn-full,\"cn-full Trading Co., Ltd.\",privacy@cn-full.example,CN,"), "{}", rows[0]);
    assert!(rows[0].contains("RECIPIENT_NAME;PHONE_NUMBER"), "{}", rows[0]);
    app
});

/// Calls every AuditService RPC with a minimal request; the status of each.
async fn every_rpc(audit: &mut Audit) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    vec![
        ("ListRegistryEvents", audit.list_registry_events(feed(0)).await.map(drop)),
        (
            "GetSellerHistory",
            audit.get_seller_history(pb::GetSellerHistoryRequest { seller_id: "acme".into() }).await.map(drop),
        ),
        (
            "GetSellerAsOf",
            audit
                .get_seller_as_of(pb::GetSellerAsOfRequest { seller_id: "acme".into(), time: None, revision: 1 })
                .await
                .map(drop),
        ),
        ("VerifyAuditChain", audit.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.map(drop)),
        ("ExplainDecision", audit.explain_decision(pb::ExplainDecisionRequest::default()).await.map(drop)),
        ("ListDecisions", audit.list_decisions(pb::ListDecisionsRequest::default()).await.map(drop)),
        ("GetDecision", audit.get_decision(pb::GetDecisionRequest { decision_id: "x".into() }).await.map(drop)),
        ("GetComplianceReport", audit.get_compliance_report(pb::GetComplianceReportRequest::default()).await.map(drop)),
        (
            "ExportRecipientRegister",
            audit.export_recipient_register(pb::ExportRecipientRegisterRequest {}).await.map(drop),
        ),
    ]
}

both!(only_auditors_and_admins_may_call_the_audit_service, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    for (name, roles, allowed) in [
        ("checkout", vec![Role::Checkout], false),
        ("legal", vec![Role::Legal], false),
        ("auditor", vec![Role::Auditor], true),
        ("admin", vec![Role::Admin], true),
        ("checkout+auditor", vec![Role::Checkout, Role::Auditor], true),
    ] {
        let mut audit = audit_as(&app, name, &roles);
        for (rpc, result) in every_rpc(&mut audit).await {
            let code = result.err().map(|s| s.code());
            if allowed {
                assert_ne!(code, Some(Code::PermissionDenied), "{name} calling {rpc}");
                assert_ne!(code, Some(Code::Unauthenticated), "{name} calling {rpc}");
            } else {
                assert_eq!(code, Some(Code::PermissionDenied), "{name} calling {rpc}");
            }
        }
    }
    let mut anonymous = AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(None));
    for (rpc, result) in every_rpc(&mut anonymous).await {
        assert_eq!(result.err().map(|s| s.code()), Some(Code::Unauthenticated), "no token calling {rpc}");
    }
    app
});
