//! The console over plain HTTP: CSRF refusal, security headers, the register's ETag, the etag
//! conflict of the seller form, field errors next to their field, and the Korean labels.

use std::net::SocketAddr;
use std::time::Duration;

use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both;
use crate::harness::{TestApp, seller, token};

/// One HTTP/1.1 exchange: status, headers (lower-case names), body.
pub(super) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Signs in over HTTP and returns the session cookie (`sg_session=…`) and the session's CSRF token.
pub(super) async fn http_sign_in(addr: SocketAddr, token: &str) -> (String, String) {
    let (_, headers, body) = http(addr, "GET", "/signin", &[], "").await;
    let login = cookie_pair(header(&headers, "set-cookie")[0]);
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = format!("csrf={csrf}&token={token}");
    let (status, headers, _) = http(
        addr,
        "POST",
        "/signin",
        &[("Cookie", &login), ("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )
    .await;
    assert_eq!(status, 303);
    let set = header(&headers, "set-cookie");
    let session = set.iter().find(|c| c.starts_with("sg_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let session = cookie_pair(session);
    let (_, _, page) = http(addr, "GET", "/", &[("Cookie", &session)], "").await;
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (session, csrf)
}

both!(a_form_posted_without_its_csrf_token_is_refused_and_writes_nothing, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (session, csrf) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let seller = "legal_name=Forged+Ltd&country=CN&role=RECIPIENT&contact_email=a%40b.example&privacy_contact=p";
    let form = [("Cookie", session.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    for forged in [format!("seller_id=forged-1&{seller}"), format!("csrf=not-the-token&seller_id=forged-1&{seller}")] {
        let (status, _, _) = http(addr, "POST", "/sellers/new", &form, &forged).await;
        assert_eq!(status, 403);
    }
    let missing = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "forged-1".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound, "nothing was written");
    // The same form with the session's token is accepted.
    let (status, _, _) =
        http(addr, "POST", "/sellers/new", &form, &format!("csrf={csrf}&seller_id=real-1&{seller}")).await;
    assert_eq!(status, 303);
    app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "real-1".into() }).await.unwrap();
    app
});

both!(every_page_sends_strict_security_headers, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    for path in ["/signin", "/recipients", "/assets/console.js"] {
        let (status, headers, _) = http(addr, "GET", path, &[], "").await;
        assert_eq!(status, 200, "{path}");
        let csp = header(&headers, "content-security-policy").join("");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&headers, "x-content-type-options"), ["nosniff"], "{path}");
        assert_eq!(header(&headers, "referrer-policy"), ["no-referrer"], "{path}");
    }
    // Signed-in pages without a session go to sign-in.
    let (status, headers, _) = http(addr, "GET", "/sellers", &[], "").await;
    assert_eq!((status, header(&headers, "location")), (303, vec!["/signin"]));
    app
});

both!(the_public_register_is_cacheable_by_etag, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (status, headers, _) = http(addr, "GET", "/recipients", &[], "").await;
    assert_eq!(status, 200);
    let etag = header(&headers, "etag")[0].to_owned();
    let (status, _, body) = http(addr, "GET", "/recipients", &[("If-None-Match", &etag)], "").await;
    assert_eq!((status, body.as_str()), (304, ""));
    // A write moves the revision, and so the ETag.
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("etag-1")), ..Default::default() })
        .await
        .unwrap();
    let mut changed = false;
    for _ in 0..300 {
        let (status, _, _) = http(addr, "GET", "/recipients", &[("If-None-Match", &etag)], "").await;
        if status == 200 {
            changed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(changed, "the ETag follows the registry revision");
    app
});

const FORM: &str = "application/x-www-form-urlencoded";

both!(a_stale_etag_shows_both_versions_and_keeps_what_was_typed, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("etag-2")), ..Default::default() })
        .await
        .unwrap();
    let (session, csrf) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let (_, _, page) = http(addr, "GET", "/sellers/etag-2/edit", &[("Cookie", &session)], "").await;
    let etag = page.split("name=\"etag\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // Someone else changes the seller after the form was read.
    let mut theirs = seller("etag-2");
    theirs.legal_name = "Renamed Elsewhere Ltd".into();
    let update = pb::UpdateSellerRequest {
        seller: Some(theirs),
        update_mask: Some(prost_types::FieldMask { paths: vec!["legal_name".into()] }),
        ..Default::default()
    };
    app.registry.clone().update_seller(update).await.unwrap();
    let mine = format!(
        "csrf={csrf}&etag={etag}&legal_name=Typed+By+Ana+Ltd&country=CN&role=RECIPIENT&status=ACTIVE\
         &contact_email=a%40b.example&privacy_contact=p"
    );
    let (status, _, page) =
        http(addr, "POST", "/sellers/etag-2/edit", &[("Cookie", &session), ("Content-Type", FORM)], &mine).await;
    assert_eq!(status, 409);
    assert!(page.contains("id=\"conflict\""), "the conflict is shown");
    assert!(page.contains("value=\"Typed By Ana Ltd\""), "what was typed is kept");
    assert!(page.contains("Renamed Elsewhere Ltd"), "the current version is shown");
    let got = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "etag-2".into() }).await.unwrap();
    assert_eq!(got.into_inner().seller.unwrap().legal_name, "Renamed Elsewhere Ltd", "nothing was overwritten");
    app
});

both!(invalid_fields_are_shown_next_to_the_field_and_nothing_is_written, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (session, csrf) = http_sign_in(addr, &token("legal-ana", &[Role::Legal])).await;
    let form = format!(
        "csrf={csrf}&seller_id=bad-1&legal_name=Ok+Ltd&country=XX&role=RECIPIENT&contact_email=not-an-email&privacy_contact=p"
    );
    let (status, _, page) =
        http(addr, "POST", "/sellers/new", &[("Cookie", &session), ("Content-Type", FORM)], &form).await;
    assert_eq!(status, 400);
    for field in ["country", "contact_email"] {
        assert!(page.contains(&format!("class=\"field-error\" data-field=\"{field}\"")), "{field}: {page}");
    }
    assert!(!page.contains("data-field=\"legal_name\""), "valid fields carry no error");
    let missing = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "bad-1".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
    app
});

both!(labels_follow_accept_language_and_the_switch, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (_, _, korean) = http(addr, "GET", "/recipients", &[("Accept-Language", "ko-KR,ko;q=0.9,en;q=0.8")], "").await;
    assert!(korean.contains("<html lang=\"ko\"") && korean.contains("제공받는 자"), "{korean}");
    let (_, _, english) = http(addr, "GET", "/recipients", &[("Accept-Language", "en-US,en;q=0.9")], "").await;
    assert!(english.contains("<html lang=\"en\"") && english.contains("Who receives"));
    let (status, headers, _) = http(addr, "GET", "/lang?to=en", &[], "").await;
    assert_eq!(status, 303);
    let choice = cookie_pair(header(&headers, "set-cookie")[0]);
    let (_, _, switched) =
        http(addr, "GET", "/recipients", &[("Accept-Language", "ko-KR"), ("Cookie", &choice)], "").await;
    assert!(switched.contains("<html lang=\"en\""), "the switch overrides Accept-Language");
    app
});

both!(an_auditor_finds_recorded_decisions_by_seller_and_outcome, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let (mut checkout, _) = app.clients_as(Some(&token("checkout-svc", &[Role::Checkout])));
    let req = crate::harness::verify("nobody-1", pb::Purpose::OrderFulfillment, &[pb::DataCategory::RecipientName]);
    checkout.verify_seller(req).await.unwrap();
    let (session, _) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let mut page = String::new();
    for _ in 0..300 {
        (_, _, page) =
            http(addr, "GET", "/audit/decisions?seller=nobody-1&outcome=DENY", &[("Cookie", &session)], "").await;
        if page.contains("SELLER_UNKNOWN") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(page.contains("SELLER_UNKNOWN") && page.contains("checkout-svc"), "{page}");
    let (_, _, none) =
        http(addr, "GET", "/audit/decisions?seller=nobody-1&outcome=ALLOW", &[("Cookie", &session)], "").await;
    assert!(!none.contains("SELLER_UNKNOWN"), "the outcome filter applies");
    app
});

both!(an_auditor_sees_a_seller_as_it_stood_at_an_earlier_revision, |app: TestApp| async move {
    let addr = app.console_addr.unwrap();
    let created = app
        .registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("asof-1")), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut renamed = seller("asof-1");
    renamed.legal_name = "Renamed Later Ltd".into();
    let update = pb::UpdateSellerRequest {
        seller: Some(renamed),
        update_mask: Some(prost_types::FieldMask { paths: vec!["legal_name".into()] }),
        ..Default::default()
    };
    app.registry.clone().update_seller(update).await.unwrap();
    let (session, _) = http_sign_in(addr, &token("auditor-bo", &[Role::Auditor])).await;
    let path = format!("/sellers/asof-1/asof?revision={}", created.revision);
    let (status, _, then) = http(addr, "GET", &path, &[("Cookie", &session)], "").await;
    assert_eq!(status, 200);
    assert!(then.contains("asof-1 Trading Co., Ltd.") && !then.contains("Renamed Later Ltd"), "{then}");
    let (_, _, now) = http(addr, "GET", "/sellers/asof-1/asof?date=9999-12-30", &[("Cookie", &session)], "").await;
    assert!(now.contains("Renamed Later Ltd"));
    let (status, _, _) = http(addr, "GET", "/sellers/asof-1/asof?date=2001-01-01", &[("Cookie", &session)], "").await;
    assert_eq!(status, 404, "the seller did not exist yet");
    app
});
