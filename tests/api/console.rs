//! The console in a real browser (headless Chromium over WebDriver, driven by fantoccini) and over
//! plain HTTP, against the real server on 127.0.0.1:0, on SQLite and PostgreSQL. Without
//! chromedriver the browser tests fail when CI=true and are skipped otherwise.

mod browser;
mod flows;
mod http;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use sha2::{Digest, Sha256};

use crate::both;
use crate::harness::{TestApp, attestation, seller, token};

// ---- A browser per test --------------------------------------------------------------------------

/// A chromedriver process and a session in headless Chromium; both end when dropped.
struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join("chromedriver")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// `None` (the test is skipped) only when chromedriver is missing outside CI.
    async fn start() -> Option<Self> {
        let Some(driver) = chromedriver() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "chromedriver is not installed: CI must install chromium and chromium-driver (see .ci/run)"
            );
            eprintln!("chromedriver is not installed: browser test skipped");
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self { client: None, driver: child, _profile: profile };
        let mut chrome = serde_json::json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", browser._profile.path().display()),
            ]
        });
        if std::path::Path::new("/usr/bin/chromium").is_file() {
            chrome["binary"] = "/usr/bin/chromium".into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => {
                    browser.client = Some(c);
                    return Some(browser);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("chromedriver did not start a Chromium session on port {port}");
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn goto(&self, base: &str, path: &str) {
        self.c().goto(&format!("{base}{path}")).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.c().wait().for_element(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.c().find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.c().find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    /// Clicks a button that submits a form, and waits until the next page replaced this one.
    async fn submit(&self, css: &str) {
        let old = self.c().find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} did not load another page");
    }

    async fn path(&self) -> String {
        self.c().current_url().await.unwrap().path().to_owned()
    }

    /// Saves a screenshot under target/console-screenshots.
    async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), self.c().screenshot().await.unwrap()).unwrap();
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(base, "/signin").await;
        self.fill("#token", token).await;
        self.submit("#signin").await;
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            c.close().await.unwrap();
        }
    }
}

fn console(app: &TestApp) -> String {
    format!("http://{}", app.console_addr.expect("the console is enabled by default"))
}

/// Clicks "try a checkout" until the decision is `want` (the snapshot follows the log within a
/// poll interval), and returns the reasons shown.
async fn try_until(b: &Browser, want: &str) -> String {
    for _ in 0..300 {
        b.click("#try").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(e) = b.c().find(Locator::Css("#decision")).await
            && e.text().await.unwrap() == want
        {
            return b.text("#reasons").await;
        }
    }
    panic!("try a checkout never showed {want}");
}

// ---- Flows ----------------------------------------------------------------------------------------

both!(legal_creates_attests_with_a_hashed_file_and_revocation_turns_the_checkout_to_deny, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    // A few sellers written through the API, so the dashboard has something to count.
    for (i, (id, country, days)) in
        [("shenzhen-1", "CN", 20), ("austin-1", "US", 45), ("berlin-1", "DE", 80)].iter().enumerate()
    {
        let mut s = seller(id);
        s.country = (*country).into();
        app.registry
            .clone()
            .create_seller(pb::CreateSellerRequest { seller: Some(s), ..Default::default() })
            .await
            .unwrap();
        let mut a = attestation(id, i as u8 + 1);
        a.expire_time = crate::harness::days_from_now(*days);
        app.registry
            .clone()
            .submit_attestation(pb::SubmitAttestationRequest { attestation: Some(a), ..Default::default() })
            .await
            .unwrap();
    }
    app.registry
        .clone()
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("tokyo-1")), ..Default::default() })
        .await
        .unwrap();
    let base = console(&app);
    b.sign_in(&base, &token("legal-ana", &[Role::Legal])).await;
    assert!(b.text("#whoami").await.contains("legal-ana"));

    // A name with markup is data, never markup.
    let name = "Acme <script>alert(1)</script> Ltd";
    b.goto(&base, "/sellers/new").await;
    b.fill("#seller_id", "acme-1").await;
    b.fill("#legal_name", name).await;
    b.fill("#country", "CN").await;
    b.c().find(Locator::Css("#role")).await.unwrap().select_by_value("RECIPIENT").await.unwrap();
    b.fill("#contact_email", "legal@acme.example").await;
    b.fill("#privacy_contact", "privacy@acme.example").await;
    b.submit("#save").await;
    assert_eq!(b.text("#legal-name").await, name);
    let scripts = b.c().execute("return document.querySelectorAll('script').length", vec![]).await.unwrap();
    assert_eq!(scripts, serde_json::json!(2), "only the console's own two scripts are on the page");

    // The contract PDF is hashed in the browser; the stored digest is the file's.
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("signed-dpa.pdf");
    let bytes = b"%PDF-1.4\n% the signed data-protection agreement with Acme\n%%EOF\n".repeat(50);
    std::fs::write(&pdf, &bytes).unwrap();
    let expected = hex::encode(Sha256::digest(&bytes));
    b.goto(&base, "/sellers/acme-1/attest").await;
    b.fill("#contract_ref", "DPA-2026-001").await;
    b.fill("#signatory", "Jane Kim").await;
    b.c().find(Locator::Css("#document")).await.unwrap().send_keys(pdf.to_str().unwrap()).await.unwrap();
    let mut shown = String::new();
    for _ in 0..300 {
        shown = b.text("#document_sha256-shown").await;
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown, expected, "the page shows the digest it computed");
    b.screenshot("attest").await;
    b.submit("#submit-attestation").await;
    b.text("#contracts").await;
    let got = app.registry.clone().get_seller(pb::GetSellerRequest { seller_id: "acme-1".into() }).await.unwrap();
    let atts = got.into_inner().attestations;
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].document_sha256, expected);
    assert_eq!(atts[0].submitted_by, "legal-ana");

    assert_eq!(try_until(&b, "ALLOW").await, "");
    b.screenshot("seller").await;
    // The chart counts contracts in force by horizon: 20 days, 45 days, 80 days and acme's year.
    let mut bars = Vec::new();
    for _ in 0..300 {
        b.goto(&base, "/").await;
        bars = Vec::new();
        for days in [30, 60, 90] {
            bars.push(b.text(&format!("#expiring-chart text[data-days='{days}']")).await);
        }
        if bars == ["1", "2", "3"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bars, ["1", "2", "3"]);
    b.screenshot("dashboard").await;
    b.goto(&base, "/recipients").await;
    b.text("#recipients").await;
    assert!(b.c().find(Locator::Css("tr[data-seller='acme-1']")).await.is_ok(), "the register lists the seller");
    b.screenshot("recipients").await;

    b.goto(&base, "/sellers/acme-1").await;
    b.fill("form.revoke input[name=reason]", "contract terminated").await;
    b.submit("form.revoke button").await;
    b.text("#contracts").await;
    assert!(try_until(&b, "DENY").await.contains("CONTRACT_REVOKED"));
    let mut dropped = false;
    for _ in 0..300 {
        b.goto(&base, "/recipients").await;
        b.text("#recipients").await;
        if b.c().find(Locator::Css("tr[data-seller='acme-1']")).await.is_err() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "the register drops a seller whose only contract was revoked");
    b.goto(&base, "/sellers").await;
    b.text("#seller-list").await;
    b.screenshot("sellers").await;
    b.close().await;
    app
});

both!(an_auditor_sees_each_write_with_its_actor_in_the_change_feed, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    let (_, mut legal) = app.clients_as(Some(&token("legal-ana", &[Role::Legal])));
    legal
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("feed-1")), ..Default::default() })
        .await
        .unwrap();
    let att = legal
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("feed-1", 7)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attestation
        .unwrap();
    let revoke = pb::RevokeAttestationRequest {
        attestation_id: att.attestation_id,
        reason: "ended".into(),
        ..Default::default()
    };
    legal.revoke_attestation(revoke).await.unwrap();

    let base = console(&app);
    b.sign_in(&base, &token("auditor-bo", &[Role::Auditor])).await;
    b.goto(&base, "/audit").await;
    b.text("#feed").await;
    let rows = b.c().find_all(Locator::Css("#feed tr.event")).await.unwrap();
    let mut seen = Vec::new();
    for row in rows {
        let kind = row.find(Locator::Css(".kind")).await.unwrap().text().await.unwrap();
        let actor = row.find(Locator::Css(".actor")).await.unwrap().text().await.unwrap();
        seen.push((kind, actor));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|(_, actor)| actor == "legal-ana"), "{seen:?}");
    b.screenshot("audit").await;
    // Auditors read; the legal forms are not theirs.
    b.goto(&base, "/sellers/new").await;
    assert!(b.text("#error").await.contains("legal"));
    b.close().await;
    app
});

both!(a_checkout_token_is_refused_at_sign_in, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    let base = console(&app);
    b.sign_in(&base, &token("checkout-svc", &[Role::Checkout])).await;
    assert!(b.text("#signin-error").await.contains("checkout"));
    b.goto(&base, "/").await;
    assert_eq!(b.path().await, "/signin", "no session was started");
    b.close().await;
    app
});

both!(a_sign_in_link_from_the_cli_signs_in, |app: TestApp| async move {
    let Some(b) = Browser::start().await else { return app };
    let out = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["token", "--link", "--role", "auditor", "--sub", "auditor-link"])
        .env("SAFEGUARD__AUTH__HS256_SECRET", crate::harness::TEST_SECRET)
        .env("SAFEGUARD__CONSOLE__LISTEN_ADDR", app.console_addr.unwrap().to_string())
        .env("SAFEGUARD__LOG__LEVEL", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(link.starts_with(&format!("{}/signin#token=", console(&app))), "{link}");
    b.c().goto(&link).await.unwrap();
    b.text("#token").await;
    b.submit("#signin").await;
    assert!(b.text("#whoami").await.contains("auditor-link"));
    b.close().await;
    app
});
