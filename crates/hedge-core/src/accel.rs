//! Accelerators: canonical names (SkyPilot's spelling) plus the aliases users and providers write.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A canonical accelerator name, e.g. `H100`, `A100-80GB`, `L4`. Build it with [`Accelerator::parse`], which
/// maps aliases (`H100-SXM`, `h100`, `A100-40GB`) to the canonical name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Accelerator(String);

/// Canonical names Hedge knows, in SkyPilot's spelling. Matching is case-insensitive; a name not listed here
/// is kept as written (a catalog may hold accelerators Hedge has never heard of).
const CANONICAL: &[&str] = &[
    "A10",
    "A100",
    "A100-80GB",
    "A100-80GB-SXM",
    "A10G",
    "A40",
    "A6000",
    "B200",
    "B300",
    "GB200",
    "GH200",
    "H100",
    "H100-MEGA",
    "H200",
    "K80",
    "L4",
    "L40",
    "L40S",
    "M60",
    "MI300X",
    "P100",
    "P4",
    "P40",
    "RTX6000",
    "RTXPRO6000",
    "T4",
    "T4g",
    "TPU-v5e",
    "TPU-v5p",
    "TPU-v6e",
    "V100",
    "V100-32GB",
];

/// Alias -> canonical. Each alias names the same device as its target, never a different one: `H100-MEGA`
/// (GCP a3-megagpu) stays distinct from `H100`.
const ALIASES: &[(&str, &str)] = &[
    ("H100-SXM", "H100"),
    ("H100-SXM5", "H100"),
    ("H100-80GB", "H100"),
    ("H100-SXM-80GB", "H100"),
    ("A100-40GB", "A100"),
    ("A100-SXM4-40GB", "A100"),
    ("A100-SXM4-80GB", "A100-80GB-SXM"),
    ("H200-SXM", "H200"),
    ("H200-141GB", "H200"),
    ("B200-SXM", "B200"),
    ("RTX-6000", "RTX6000"),
    ("V100-16GB", "V100"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceleratorError {
    #[error("accelerator name is empty")]
    Empty,
    #[error("accelerator name {0:?} has characters other than letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("accelerator count {0:?} is not a positive whole number")]
    BadCount(String),
}

impl Accelerator {
    /// Canonicalises a name: aliases and case map to the canonical spelling.
    pub fn parse(s: &str) -> Result<Self, AcceleratorError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AcceleratorError::Empty);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(AcceleratorError::BadName(s.to_owned()));
        }
        if let Some((_, canon)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(s)) {
            return Ok(Accelerator((*canon).to_owned()));
        }
        if let Some(canon) = CANONICAL.iter().find(|c| c.eq_ignore_ascii_case(s)) {
            return Ok(Accelerator((*canon).to_owned()));
        }
        Ok(Accelerator(s.to_owned()))
    }
    /// Whether the name is one Hedge knows (canonical or alias), as opposed to kept as written.
    pub fn is_known(&self) -> bool {
        CANONICAL.contains(&self.0.as_str())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Accelerator({})", self.0)
    }
}

/// A request for `count` accelerators of one kind on each node, written `H100:8` (or `H100`, meaning 1).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct AccelRequest {
    pub name: Accelerator,
    pub count: u32,
}

impl AccelRequest {
    pub fn new(name: Accelerator, count: u32) -> Self {
        AccelRequest { name, count }
    }
    /// Parses `NAME` or `NAME:COUNT`. The count must be a positive whole number (`8`, or `8.0` as SkyPilot's
    /// catalogs write it).
    pub fn parse(s: &str) -> Result<Self, AcceleratorError> {
        let (name, count) = match s.rsplit_once(':') {
            Some((n, c)) => (n, parse_count(c)?),
            None => (s, 1),
        };
        Ok(AccelRequest {
            name: Accelerator::parse(name)?,
            count,
        })
    }
}

/// Parses a positive whole count, accepting a float spelling with no fractional part (`8.0`).
pub fn parse_count(c: &str) -> Result<u32, AcceleratorError> {
    let c = c.trim();
    let bad = || AcceleratorError::BadCount(c.to_owned());
    let v: u32 = match c.parse::<u32>() {
        Ok(v) => v,
        Err(_) => {
            let f: f64 = c.parse().map_err(|_| bad())?;
            if !(f.is_finite() && f.fract() == 0.0 && f >= 1.0 && f <= u32::MAX as f64) {
                return Err(bad());
            }
            f as u32
        }
    };
    if v == 0 {
        return Err(bad());
    }
    Ok(v)
}

impl fmt::Display for AccelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_case() {
        for (input, want) in [
            ("H100", "H100"),
            ("h100", "H100"),
            ("H100-SXM", "H100"),
            ("a100-40gb", "A100"),
            ("A100-80GB", "A100-80GB"),
            ("H100-MEGA", "H100-MEGA"),
            ("Gaudi3", "Gaudi3"),
        ] {
            assert_eq!(Accelerator::parse(input).unwrap().as_str(), want, "{input}");
        }
        assert!(!Accelerator::parse("Gaudi3").unwrap().is_known());
        assert_eq!(Accelerator::parse(" "), Err(AcceleratorError::Empty));
        assert!(matches!(
            Accelerator::parse("H 100"),
            Err(AcceleratorError::BadName(_))
        ));
    }

    #[test]
    fn requests() {
        assert_eq!(AccelRequest::parse("H100:8").unwrap().to_string(), "H100:8");
        assert_eq!(AccelRequest::parse("L4").unwrap().count, 1);
        assert_eq!(AccelRequest::parse("A100:8.0").unwrap().count, 8);
        for bad in ["H100:0", "H100:-1", "H100:1.5", "H100:x", "H100:"] {
            assert!(
                matches!(AccelRequest::parse(bad), Err(AcceleratorError::BadCount(_))),
                "{bad}"
            );
        }
    }
}
