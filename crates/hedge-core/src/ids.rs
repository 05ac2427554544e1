//! Typed identifiers. A provider id is never confused with a region id, and ids compare and hash cheaply.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A cloud or neocloud, named as SkyPilot names it, lower case: `aws`, `gcp`, `azure`, `oci`, `lambda`,
    /// `nebius`, or a local provider's configured name.
    ProviderId
);
impl ProviderId {
    /// Provider names are case-insensitive on input (`AWS` = `aws`); the canonical form is lower case.
    pub fn parse(s: &str) -> Self {
        Self(s.trim().to_ascii_lowercase())
    }
}
string_id!(
    /// A provider's region, as the provider spells it (`us-east-1`, `eastus`).
    RegionId
);
string_id!(
    /// A zone inside a region (`use1-az1`, `us-central1-a`, `AF-CASABLANCA-1-AD-1`).
    ZoneId
);
string_id!(
    /// A team that owns jobs, quotas and budgets.
    TeamId
);
string_id!(
    /// A commitment (reservation, savings plan, contract) owned by the user.
    CommitmentId
);

/// A job's id, assigned by the broker or the simulator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
