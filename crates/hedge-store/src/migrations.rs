//! Versioned schema migrations, shared bookkeeping for both backends.
//!
//! Each backend lists its migrations (`migrations/<backend>/NNNN_name.sql`, embedded at build time) and
//! records every applied one in `schema_migrations (version, name, sha256, applied_at)`. At open, within
//! one transaction (PostgreSQL also holds an advisory lock), [`plan`] compares what was applied with what
//! this build knows: a database from a newer build is refused, an applied migration whose SQL has since
//! changed is refused, and the missing ones are applied in order.

use crate::error::StoreError;
use crate::token::sha256_hex;

/// The schema version this build migrates every database to (both backends have the same numbered
/// migrations; a unit test in each backend holds that).
pub const SCHEMA_VERSION: u32 = 5;

pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub(crate) fn sha256(&self) -> String {
        sha256_hex(self.sql.as_bytes())
    }
}

/// Given the applied `(version, sha256)` rows, the migrations still to apply, in order.
pub(crate) fn plan<'m>(
    applied: &[(u32, String)],
    known: &'m [Migration],
) -> Result<Vec<&'m Migration>, StoreError> {
    let latest = known.last().map_or(0, |m| m.version);
    if let Some(&(found, _)) = applied.iter().max_by_key(|(v, _)| *v) {
        if found > latest {
            return Err(StoreError::SchemaTooNew {
                found,
                known: latest,
            });
        }
    }
    for (version, sha) in applied {
        match known.iter().find(|m| m.version == *version) {
            Some(m) if m.sha256() == *sha => {}
            Some(m) => {
                return Err(StoreError::MigrationChanged {
                    version: m.version,
                    name: m.name,
                })
            }
            None => {
                return Err(StoreError::MigrationChanged {
                    version: *version,
                    name: "(unknown to this build)",
                })
            }
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            name: "init",
            sql: "CREATE TABLE a (x INTEGER)",
        },
        Migration {
            version: 2,
            name: "more",
            sql: "CREATE TABLE b (y INTEGER)",
        },
    ];

    #[test]
    fn plans_missing_refuses_newer_and_changed() {
        let v = |v: u32| (v, KNOWN[v as usize - 1].sha256());
        assert_eq!(plan(&[], KNOWN).unwrap().len(), 2);
        assert_eq!(
            plan(&[v(1)], KNOWN)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            vec![2]
        );
        assert!(plan(&[v(1), v(2)], KNOWN).unwrap().is_empty());
        assert!(matches!(
            plan(&[v(1), (3, "x".into())], KNOWN),
            Err(StoreError::SchemaTooNew { found: 3, known: 2 })
        ));
        assert!(matches!(
            plan(&[(1, "edited".into())], KNOWN),
            Err(StoreError::MigrationChanged { version: 1, .. })
        ));
    }
}
