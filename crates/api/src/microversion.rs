//! Compute API microversions.
//!
//! Stratus advertises only versions whose changes it implements for the
//! resources it serves (or that touch only APIs it does not offer):
//! docs/compute-microversions.md keeps, per version, what Stratus does.

use std::fmt;

/// A `major.minor` API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    /// Always 2 for compute.
    pub major: u32,
    /// The microversion.
    pub minor: u32,
}

/// Oldest compute microversion served.
pub const MIN_COMPUTE: Microversion = Microversion { major: 2, minor: 1 };
/// Newest compute microversion served.
pub const MAX_COMPUTE: Microversion = Microversion { major: 2, minor: 104 };

impl Microversion {
    /// Build a version.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Is this request at least `2.minor`?
    pub fn at_least(self, minor: u32) -> bool {
        self >= Self::new(2, minor)
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a requested microversion was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MicroversionError {
    /// Not of the form `X.Y` or `latest` (HTTP 400).
    #[error("API Version String {0} is of invalid format. Must be of format MajorNum.MinorNum.")]
    Malformed(String),
    /// Outside the served range (HTTP 406).
    #[error("Version {0} is not supported by the API. Minimum is {MIN_COMPUTE} and maximum is {MAX_COMPUTE}.")]
    Unsupported(String),
}

/// Negotiate from the two header values a client may send
/// (`OpenStack-API-Version: compute X.Y` wins over `X-OpenStack-Nova-API-Version`).
pub fn negotiate(new_header: Option<&str>, legacy_header: Option<&str>) -> Result<Microversion, MicroversionError> {
    let requested = new_header
        .and_then(|h| {
            h.split(',').find_map(|part| {
                let mut it = part.split_whitespace();
                match (it.next(), it.next()) {
                    (Some(svc), Some(v)) if svc.eq_ignore_ascii_case("compute") => Some(v.to_string()),
                    _ => None,
                }
            })
        })
        .or_else(|| legacy_header.map(|s| s.trim().to_string()));
    let Some(v) = requested else {
        return Ok(MIN_COMPUTE);
    };
    if v.eq_ignore_ascii_case("latest") {
        return Ok(MAX_COMPUTE);
    }
    let (maj, min) = v.split_once('.').ok_or_else(|| MicroversionError::Malformed(v.clone()))?;
    let parse = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (Some(major), Some(minor)) = (parse(maj), parse(min)) else {
        return Err(MicroversionError::Malformed(v));
    };
    let mv = Microversion::new(major, minor);
    if mv < MIN_COMPUTE || mv > MAX_COMPUTE {
        return Err(MicroversionError::Unsupported(v));
    }
    Ok(mv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_nova() {
        assert_eq!(negotiate(None, None), Ok(MIN_COMPUTE));
        assert_eq!(negotiate(Some("compute 2.9"), None), Ok(Microversion::new(2, 9)));
        assert_eq!(negotiate(Some("volume 3.5, compute 2.3"), Some("2.1")), Ok(Microversion::new(2, 3)));
        assert_eq!(negotiate(None, Some("latest")), Ok(MAX_COMPUTE));
        assert!(matches!(negotiate(Some("compute 2.999"), None), Err(MicroversionError::Unsupported(_))));
        assert!(matches!(negotiate(Some("compute 3.0"), None), Err(MicroversionError::Unsupported(_))));
        assert!(matches!(negotiate(Some("compute abc"), None), Err(MicroversionError::Malformed(_))));
        assert!(matches!(negotiate(None, Some("2.01")), Err(MicroversionError::Malformed(_))));
    }
}
