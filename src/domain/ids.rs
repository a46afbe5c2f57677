//! Validated identifiers and values: once constructed, they are known to be well formed, so nothing
//! past the edge re-checks them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::invalid::Violation;

/// A seller id chosen by the platform: `[A-Za-z0-9._:-]{1,64}`. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SellerId(Arc<str>);

impl SellerId {
    /// The longest seller id accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates `raw` as a seller id.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("must not be empty");
        }
        if raw.len() > Self::MAX_LEN {
            return Err("must be at most 64 characters");
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) {
            return Err("may contain only letters, digits and . _ : -");
        }
        Ok(Self(Arc::from(raw)))
    }

    /// Validates `raw` as the seller id found in `field`.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, Violation> {
        Self::parse(raw).map_err(|why| Violation::new(field, why))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as shared text: no copy.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The id of text that was a valid id when it was stored (the compact snapshot's records):
    /// not checked again.
    pub(crate) fn from_stored(raw: &str) -> Self {
        Self(Arc::from(raw))
    }
}

impl TryFrom<String> for SellerId {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SellerId> for String {
    fn from(value: SellerId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::borrow::Borrow<str> for SellerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case (`US`, `CN`). Stored inline: two bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    /// Validates `raw` as an assigned ISO 3166-1 alpha-2 code.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let bytes = raw.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err("must be an ISO 3166-1 alpha-2 code in upper case, e.g. US");
        }
        if !ISO_3166_ALPHA2.split(' ').any(|code| code == raw) {
            return Err("is not an assigned ISO 3166-1 alpha-2 code");
        }
        Ok(Self([bytes[0], bytes[1]]))
    }

    /// The two letters, for compact storage.
    pub fn as_bytes(self) -> [u8; 2] {
        self.0
    }

    /// The code of bytes that [`as_bytes`](Self::as_bytes) gave (the compact snapshot's records):
    /// not looked up in the ISO list again, which would cost more than the decision itself.
    pub(crate) fn from_stored(bytes: [u8; 2]) -> Self {
        Self(bytes)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for Country {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Country> for String {
    fn from(value: Country) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ \
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR \
HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU \
LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU \
NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO \
SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU \
WF WS YE YT ZA ZM ZW";

/// The SHA-256 of a signed document: 64 hex digits, kept in lower case.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentSha256(String);

impl DocumentSha256 {
    /// Validates `raw` as 64 hex digits (either case).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("must be 64 hexadecimal digits (a SHA-256)");
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The digest in lower-case hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DocumentSha256 {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DocumentSha256> for String {
    fn from(value: DocumentSha256) -> Self {
        value.0
    }
}

/// Whether `c` may not appear in text that people read: a seller's name and contacts, a contract's
/// reference and signatory, an order's reference and notes, reasons, a token's subject.
///
/// These characters are invisible or change how the text around them is laid out, so the text a
/// buyer or an auditor sees would differ from the text stored (the "Trojan Source" bidi attack,
/// CVE-2021-42574; a zero-width space makes two sellers' names look the same):
/// - control characters (Unicode Cc: C0, DEL, C1), line and paragraph separators (U+2028, U+2029);
/// - bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and marks
///   (U+200E, U+200F, U+061C);
/// - zero-width and invisible characters: U+200B–U+200D, U+2060–U+2064, the deprecated format
///   controls U+206A–U+206F, the byte-order mark U+FEFF, interlinear annotation U+FFF9–U+FFFB and
///   the tag characters U+E0000–U+E007F (which can carry hidden text).
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Checks text that is shown to people (see [`is_hidden_or_control`]); the one check every
/// displayed field goes through, at the gRPC edge, the CLI import and token subjects alike.
pub fn check_display_text(value: &str) -> Result<(), String> {
    match value.chars().find(|c| is_hidden_or_control(*c)) {
        None => Ok(()),
        Some(c) if c.is_control() => Err(format!("must not contain control characters (found U+{:04X})", u32::from(c))),
        Some(c) => Err(format!(
            "must not contain invisible, line-separator or bidirectional formatting characters (found U+{:04X})",
            u32::from(c)
        )),
    }
}

/// A point in time: microseconds since the Unix epoch, UTC. Microseconds because both SQLite and
/// PostgreSQL store them exactly as a 64-bit integer, and comparisons in SQL stay numeric.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug, Default)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    const MICROS_PER_SECOND: i64 = 1_000_000;
    /// 0001-01-01T00:00:00Z, the earliest time the wire format (google.protobuf.Timestamp) allows.
    pub const MIN: Self = Self(-62_135_596_800 * Self::MICROS_PER_SECOND);
    /// 9999-12-31T23:59:59.999999Z, the latest time the wire format allows.
    pub const MAX: Self = Self(253_402_300_799 * Self::MICROS_PER_SECOND + 999_999);

    /// The current time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// From seconds and nanoseconds since the epoch, if within the wire format's range.
    pub fn from_parts(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        let micros = seconds.checked_mul(Self::MICROS_PER_SECOND)?.checked_add(i64::from(nanos / 1000))?;
        let t = Self(micros);
        (Self::MIN..=Self::MAX).contains(&t).then_some(t)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch and the remaining nanoseconds.
    pub fn to_parts(self) -> (i64, i32) {
        let secs = self.0.div_euclid(Self::MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(Self::MICROS_PER_SECOND);
        (secs, (micros * 1000) as i32)
    }

    /// This time plus `seconds`, saturating.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(Self::MICROS_PER_SECOND)))
    }

    /// This time plus `days`, saturating.
    pub fn plus_days(self, days: i64) -> Self {
        self.plus_seconds(days.saturating_mul(86_400))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seller_ids_follow_the_documented_alphabet() {
        assert!(SellerId::parse("acme.shop:eu-1_x").is_ok());
        assert!(SellerId::parse("").is_err());
        assert!(SellerId::parse("with space").is_err());
        assert!(SellerId::parse(&"a".repeat(65)).is_err());
        assert!(SellerId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn countries_must_be_assigned_codes() {
        assert_eq!(Country::parse("CN").map(|c| c.to_string()), Ok("CN".to_owned()));
        assert!(Country::parse("cn").is_err());
        assert!(Country::parse("XX").is_err());
        assert!(Country::parse("USA").is_err());
    }

    #[test]
    fn digests_are_normalised_to_lower_case() {
        let d = DocumentSha256::parse(&"AB".repeat(32)).map(|d| d.as_str().to_owned());
        assert_eq!(d, Ok("ab".repeat(32)));
        assert!(DocumentSha256::parse("abc").is_err());
        assert!(DocumentSha256::parse(&"g".repeat(64)).is_err());
    }

    #[test]
    fn display_text_refuses_invisible_and_reordering_characters() {
        assert!(check_display_text("Acme Trading Co., Ltd. — 深圳 한국 Ünïcödé & emoji 👍").is_ok());
        for bad in [
            '\u{0}',
            '\n',
            '\u{7F}',
            '\u{85}',
            '\u{9F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            let text = format!("Acme{bad}Ltd");
            let why = check_display_text(&text).err();
            let code = format!("U+{:04X}", u32::from(bad));
            assert!(why.as_deref().is_some_and(|w| w.contains(&code)), "{code}: {why:?}");
        }
        // Neighbours of the refused ranges stay allowed.
        for fine in ['\u{2027}', '\u{202F}', '\u{2070}', '\u{200A}', '\u{FEFE}'] {
            assert!(check_display_text(&format!("a{fine}b")).is_ok(), "U+{:04X}", u32::from(fine));
        }
    }

    #[test]
    fn timestamps_round_trip_through_parts() {
        let t = Timestamp::from_parts(1_700_000_000, 123_456_000);
        assert_eq!(t.map(Timestamp::to_parts), Some((1_700_000_000, 123_456_000)));
        assert_eq!(Timestamp::from_parts(-1, 0).map(Timestamp::to_parts), Some((-1, 0)));
        assert!(Timestamp::from_parts(i64::MAX, 0).is_none());
        assert!(Timestamp::from_parts(0, -1).is_none());
    }
}
