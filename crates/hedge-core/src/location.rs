//! Where an offer lives: a region, or a zone inside a region. Never a pair of optional strings.

use crate::ids::{RegionId, ZoneId};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// The offer is sold region-wide (Azure, Lambda, Nebius list no zones).
    Region { region: RegionId },
    /// The offer is sold in one zone of a region.
    Zone { region: RegionId, zone: ZoneId },
}

impl Location {
    pub fn region(&self) -> &RegionId {
        match self {
            Location::Region { region } | Location::Zone { region, .. } => region,
        }
    }
    pub fn zone(&self) -> Option<&ZoneId> {
        match self {
            Location::Region { .. } => None,
            Location::Zone { zone, .. } => Some(zone),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Region { region } => write!(f, "{region}"),
            Location::Zone { region, zone } => write!(f, "{region}/{zone}"),
        }
    }
}
