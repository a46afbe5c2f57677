//! Validation failures: which field, and why. The gRPC edge turns them into INVALID_ARGUMENT with a
//! google.rpc.BadRequest listing every violation, so a client can fix all of them in one go.

use std::fmt;

/// One offending field, named by its path in the request (`attestation.clauses[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path, as in the proto request.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }

    /// The same violation, nested under `prefix` (`requests[3]` + `seller_id`).
    pub fn nested(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", self.field) };
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Collects violations so that a request reports all its faults at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn push(&mut self, violation: Violation) {
        self.0.push(violation);
    }

    /// Records the error of `result` and yields its value, if any.
    pub fn check<T>(&mut self, result: Result<T, Violation>) -> Option<T> {
        result.map_err(|v| self.push(v)).ok()
    }

    /// `Ok(value)` when nothing was recorded, else every violation.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<Violation>> {
        if self.0.is_empty() { Ok(value()) } else { Err(self.0) }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations recorded.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }
}
