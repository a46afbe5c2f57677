//! The console's labels in English and Korean. The language comes from a `sg_lang` cookie set by
//! the switch in the header, else from the browser's Accept-Language; a missing label falls back to
//! its key, so an untranslated word shows up in review rather than as a blank.

use axum::extract::FromRequestParts;
use http::request::Parts;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ko,
}

impl Lang {
    /// The code used in the cookie and in `lang=` attributes.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ko => "ko",
        }
    }

    /// The language a request asks for: the switch's cookie first, then Accept-Language.
    pub fn of(parts: &Parts) -> Self {
        if let Some(lang) = super::session::cookie(&parts.headers, "sg_lang") {
            return if lang == "ko" { Self::Ko } else { Self::En };
        }
        let accept = parts.headers.get(http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        // The first language listed is the browser's preference; q-values rarely reorder it.
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("ko") { Self::Ko } else { Self::En }
    }

    /// The label for `key`.
    pub fn t(self, key: &'static str) -> &'static str {
        let Some((en, ko)) = LABELS.iter().find(|(k, _, _)| *k == key).map(|(_, en, ko)| (*en, *ko)) else {
            return key;
        };
        match self {
            Self::En => en,
            Self::Ko => ko,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// (key, English, Korean).
const LABELS: &[(&str, &str, &str)] = &[
    ("console", "safeguard console", "safeguard 콘솔"),
    ("dashboard", "Dashboard", "대시보드"),
    ("sellers", "Sellers", "판매자"),
    ("new_seller", "New seller", "판매자 등록"),
    ("edit_seller", "Edit seller", "판매자 수정"),
    ("audit", "Change feed", "변경 이력"),
    ("chain", "Chain verification", "체인 검증"),
    ("decisions", "Decisions", "결정 기록"),
    ("as_of", "As of", "시점 조회"),
    ("caller", "Caller", "호출자"),
    ("register", "Recipient register", "제공받는 자 목록"),
    ("orders", "Suspension orders", "중지 명령"),
    ("sign_in", "Sign in", "로그인"),
    ("sign_out", "Sign out", "로그아웃"),
    (
        "paste_token",
        "Paste a token (JWT) issued for legal, auditor or admin",
        "법무, 감사 또는 관리자용 토큰(JWT)을 붙여넣으세요",
    ),
    ("signed_in_as", "Signed in as", "로그인 사용자"),
    ("by_state", "Sellers by state", "상태별 판매자"),
    ("by_country", "Sellers by country", "국가별 판매자"),
    ("allowed", "Allowed (all baseline purposes)", "허용 (모든 기본 목적)"),
    ("partial", "Partial", "부분 허용"),
    ("denied", "Denied", "거부"),
    ("suspended", "Suspended", "중지"),
    ("no_contract", "No contract", "계약 없음"),
    ("expiring", "Contracts expiring", "만료 예정 계약"),
    ("within_days", "days", "일"),
    ("missing_clauses", "Most frequently missing clauses", "가장 많이 누락된 조항"),
    ("orders_in_force", "Suspension orders in force", "시행 중인 중지 명령"),
    ("registry", "Registry", "레지스트리"),
    ("revision", "Revision", "리비전"),
    ("health", "Health", "상태"),
    ("serving", "Serving decisions", "결정 제공 중"),
    ("not_serving", "Not serving: decisions are DENY REGISTRY_STALE", "중단됨: 모든 결정이 DENY REGISTRY_STALE"),
    ("none", "None", "없음"),
    ("search", "Search", "검색"),
    ("search_hint", "id or name", "ID 또는 이름"),
    ("country", "Country", "국가"),
    ("status", "Status", "상태"),
    ("role", "Role", "역할"),
    ("state", "Compliance", "준수 상태"),
    ("any", "Any", "전체"),
    ("next", "Next", "다음"),
    ("previous", "Previous", "이전"),
    ("seller_id", "Seller id", "판매자 ID"),
    ("legal_name", "Legal name", "법적 명칭"),
    ("contact_email", "Contact email", "연락처 이메일"),
    ("privacy_contact", "Privacy contact", "개인정보 담당자"),
    ("save", "Save", "저장"),
    ("create", "Create", "등록"),
    ("contracts", "Contracts", "계약"),
    ("clause", "Clause", "조항"),
    ("history", "History", "이력"),
    ("supervision", "Supervision", "관리·감독"),
    ("recent_decisions", "Recent decisions", "최근 결정"),
    ("try_checkout", "Try a checkout", "결제 시뮬레이션"),
    ("purpose", "Purpose", "목적"),
    ("categories", "Data categories", "개인정보 항목"),
    ("basis", "Transfer basis", "이전 근거"),
    ("decide", "Decide", "판정"),
    ("decision", "Decision", "결정"),
    ("reasons", "Reasons", "사유"),
    ("attest", "Submit an attestation", "계약 증명 제출"),
    ("contract_ref", "Contract reference", "계약 번호"),
    (
        "document",
        "Signed contract (PDF): hashed in your browser, never uploaded",
        "서명된 계약서(PDF): 브라우저에서 해시하며 업로드하지 않습니다",
    ),
    ("document_sha256", "SHA-256 of the signed document", "서명 문서의 SHA-256"),
    ("clauses", "Clauses", "조항"),
    ("purposes", "Purposes", "목적"),
    ("signed", "Signed on", "서명일"),
    ("effective", "Effective from", "효력 발생일"),
    ("expires", "Expires on", "만료일"),
    ("signatory", "Signatory", "서명자"),
    ("retention_days", "Retention (days, 0: policy's)", "보유 기간(일, 0: 정책 기준)"),
    ("submit", "Submit", "제출"),
    ("revoke", "Revoke", "철회"),
    ("reason", "Reason", "사유"),
    ("actor", "Actor", "수행자"),
    ("kind", "Event", "이벤트"),
    ("time", "Time", "시각"),
    ("filter", "Filter", "필터"),
    ("verify_chain", "Verify the chain", "체인 검증 실행"),
    ("chain_ok", "The hash chain is intact", "해시 체인이 온전합니다"),
    ("chain_broken", "The hash chain is broken", "해시 체인이 손상되었습니다"),
    ("download", "Download", "다운로드"),
    ("recipients_title", "Who receives buyers' personal data", "구매자 개인정보를 제공받는 자"),
    (
        "recipients_intro",
        "Under PIPA Article 28-8(2), these overseas sellers receive the personal data of buyers, for the purposes, categories and retention shown.",
        "개인정보 보호법 제28조의8 제2항에 따라, 아래 해외 판매자가 표시된 목적·항목·보유 기간으로 구매자의 개인정보를 제공받습니다.",
    ),
    ("retention", "Retention (days)", "보유 기간(일)"),
    (
        "conflict",
        "Someone changed this seller meanwhile: review the current values, then save again.",
        "그 사이에 다른 사용자가 이 판매자를 변경했습니다. 현재 값을 확인한 후 다시 저장하세요.",
    ),
    ("fix_fields", "Some fields need attention.", "확인이 필요한 항목이 있습니다."),
    ("order_ref", "Order reference", "명령 번호"),
    ("scope", "Applies to (seller id or country code)", "대상 (판매자 ID 또는 국가 코드)"),
    ("note", "Note", "비고"),
    ("lift", "Lift", "해제"),
    ("create_order", "Issue a suspension order", "중지 명령 등록"),
    ("language", "KO · 한국어", "EN · English"),
    ("explain", "Explain decision", "결정 설명"),
    ("import", "Import CSV", "CSV 가져오기"),
    ("csv_file", "CSV file (read in your browser)", "CSV 파일 (브라우저에서 읽음)"),
    ("csv_text", "CSV text", "CSV 내용"),
    ("dry_run", "Dry run", "사전 검사"),
    ("import_format", "Same format as safeguard import:", "safeguard import와 같은 형식:"),
    ("line", "Line", "줄"),
    ("field", "Field", "항목"),
    ("message", "Problem", "문제"),
    ("more_errors", "more errors not listed", "개의 오류가 더 있습니다"),
    ("rows", "rows", "행"),
    ("valid", "valid", "정상"),
    ("with_errors", "with errors", "오류"),
    ("errors", "errors", "오류"),
    ("nothing_written", "Nothing has been written yet.", "아직 아무것도 기록되지 않았습니다."),
    (
        "skipped_rows",
        "Rows with errors are skipped; the other rows are imported.",
        "오류가 있는 행은 건너뛰고 나머지 행을 가져옵니다.",
    ),
    (
        "registry_faults",
        "Faults that depend on the registry itself (an attestation of a seller that is not registered, a stale etag) show when the import runs.",
        "레지스트리 상태에 따른 오류(등록되지 않은 판매자의 계약, 오래된 etag)는 가져오기 실행 시 표시됩니다.",
    ),
    ("confirm_import", "Import the valid rows", "정상 행 가져오기"),
    ("importing", "Importing:", "가져오는 중:"),
    ("import_done", "Import finished at", "가져오기 완료:"),
    (
        "evidence",
        "Evidence file: hashed in your browser, never uploaded",
        "증빙 파일: 브라우저에서 해시하며 업로드하지 않습니다",
    ),
    ("evidence_sha256", "SHA-256 of the evidence", "증빙의 SHA-256"),
    ("record_supervision", "Record supervision", "관리·감독 기록"),
    ("checkpoints", "Signed checkpoint", "서명된 체크포인트"),
    ("checkpoints_off", "Checkpoints are off on this server.", "이 서버는 체크포인트를 사용하지 않습니다."),
    ("tree_size", "Tree size", "트리 크기"),
    ("check_kept", "Check a kept checkpoint", "보관한 체크포인트 확인"),
    ("kept_checkpoint", "Paste a checkpoint you kept (signed note)", "보관한 체크포인트(서명된 노트)를 붙여넣으세요"),
    ("check", "Check", "확인"),
    ("consistent", "Today's log is consistent with the kept checkpoint", "현재 로그가 보관한 체크포인트와 일치합니다"),
    (
        "inconsistent",
        "Today's log is NOT consistent with the kept checkpoint",
        "현재 로그가 보관한 체크포인트와 일치하지 않습니다",
    ),
    ("allowed_categories", "Allowed categories", "허용된 항목"),
    ("recorded", "Recorded", "기록"),
    ("replayed", "Replayed", "재현"),
    (
        "replay_matches",
        "Replayed at the recorded time, the registry gives the recorded answer.",
        "기록된 시각으로 재현한 결과가 기록과 일치합니다.",
    ),
    (
        "replay_differs",
        "Replayed at the recorded time, the registry gives a different answer: see both below.",
        "기록된 시각으로 재현한 결과가 기록과 다릅니다. 아래에서 비교하세요.",
    ),
    (
        "not_replayable",
        "This record marks lost records: there is no request to replay.",
        "유실 기록 표시로, 재현할 요청이 없습니다.",
    ),
];
