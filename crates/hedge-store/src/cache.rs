//! An in-process cache of parsed task specs, keyed by job id.
//!
//! Coherent without invalidation, even with several processes on one database: a job's spec never changes
//! after submission and job ids are never reused (SQLite `AUTOINCREMENT`, PostgreSQL identity). Entries
//! are dropped when a job reaches a terminal state; when the cache holds [`SpecCache::CAPACITY`] entries it
//! is cleared and refills on demand. Parsing a spec's JSON costs several times more than reading its row,
//! so the scheduler's full-queue reads ([`crate::Store::queued_jobs`]) mostly hit.

use crate::codec::parse_spec;
use crate::error::StoreError;
use hedge_core::{JobId, TaskSpec};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct SpecCache {
    map: RwLock<HashMap<JobId, Arc<TaskSpec>>>,
}

impl SpecCache {
    pub(crate) const CAPACITY: usize = 1 << 18;

    pub(crate) fn get(&self, id: JobId) -> Option<Arc<TaskSpec>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, id: JobId, spec: Arc<TaskSpec>) {
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        if m.len() >= Self::CAPACITY {
            m.clear();
        }
        m.insert(id, spec);
    }

    /// The cached spec, or `json` parsed (and cached).
    pub(crate) fn get_or_parse(&self, id: JobId, json: &str) -> Result<Arc<TaskSpec>, StoreError> {
        if let Some(s) = self.get(id) {
            return Ok(s);
        }
        let s = Arc::new(parse_spec(json)?);
        self.insert(id, s.clone());
        Ok(s)
    }

    pub(crate) fn remove(&self, id: JobId) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hedge_core::ResourceRequest;

    #[test]
    fn caches_and_bounds() {
        let c = SpecCache::default();
        let json = serde_json::to_string(&TaskSpec::single(ResourceRequest::default())).unwrap();
        let a = c.get_or_parse(JobId(1), &json).unwrap();
        // A hit does not parse: garbage text still returns the cached spec.
        let b = c.get_or_parse(JobId(1), "not json").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(c.get_or_parse(JobId(2), "not json").is_err());
        c.remove(JobId(1));
        assert!(c.get(JobId(1)).is_none());
        for i in 0..SpecCache::CAPACITY as u64 + 5 {
            c.insert(JobId(i), a.clone());
        }
        assert!(c.len() <= SpecCache::CAPACITY);
    }
}
