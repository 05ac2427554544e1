//! Conversions between domain values and the column values both backends store. One place, so SQLite and
//! PostgreSQL read and write identical representations.

use crate::error::StoreError;
use crate::model::{HealthState, Principal};
use hedge_core::{Accelerator, AttemptStatus, JobId, JobState, Market, TaskSpec};

pub(crate) fn market_str(m: Market) -> &'static str {
    match m {
        Market::Committed => "committed",
        Market::OnDemand => "on_demand",
        Market::Spot => "spot",
    }
}

pub(crate) fn parse_market(table: &'static str, s: &str) -> Result<Market, StoreError> {
    match s {
        "committed" => Ok(Market::Committed),
        "on_demand" => Ok(Market::OnDemand),
        "spot" => Ok(Market::Spot),
        _ => Err(corrupt(table, "market", format!("unknown market {s:?}"))),
    }
}

pub(crate) fn parse_state(
    table: &'static str,
    column: &'static str,
    s: &str,
) -> Result<JobState, StoreError> {
    // A match compiles to a few length and byte comparisons: this runs once per row of whole-queue reads.
    Ok(match s {
        "pending" => JobState::Pending,
        "placing" => JobState::Placing,
        "launching" => JobState::Launching,
        "running" => JobState::Running,
        "recovering" => JobState::Recovering,
        "cancelling" => JobState::Cancelling,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "cancelled" => JobState::Cancelled,
        _ => return Err(corrupt(table, column, format!("unknown job state {s:?}"))),
    })
}

pub(crate) fn parse_attempt_status(s: &str) -> Result<AttemptStatus, StoreError> {
    s.parse().map_err(|e: hedge_core::job::UnknownName| {
        corrupt("launch_attempts", "status", e.to_string())
    })
}

pub(crate) fn parse_health(s: &str) -> Result<HealthState, StoreError> {
    match s {
        "healthy" => Ok(HealthState::Healthy),
        "degraded" => Ok(HealthState::Degraded),
        _ => Err(corrupt(
            "provider_health",
            "state",
            format!("unknown health state {s:?}"),
        )),
    }
}

pub(crate) fn parse_accel(table: &'static str, s: &str) -> Result<Accelerator, StoreError> {
    Accelerator::parse(s).map_err(|e| corrupt(table, "accelerator", e.to_string()))
}

pub(crate) fn spec_json(spec: &TaskSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|e| StoreError::InvalidInput {
        field: "spec",
        reason: e.to_string(),
    })
}

pub(crate) fn parse_spec(s: &str) -> Result<TaskSpec, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("jobs", "spec", e.to_string()))
}

pub(crate) fn explanation_json(v: &serde_json::Value) -> String {
    v.to_string()
}

pub(crate) fn parse_explanation(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("job_events", "explanation", e.to_string()))
}

pub(crate) fn job_id(table: &'static str, v: i64) -> Result<JobId, StoreError> {
    u64::try_from(v)
        .map(JobId)
        .map_err(|_| corrupt(table, "job_id", format!("negative id {v}")))
}

pub(crate) fn job_id_sql(id: JobId) -> Result<i64, StoreError> {
    i64::try_from(id.0).map_err(|_| StoreError::InvalidInput {
        field: "job id",
        reason: format!("{} is out of range", id.0),
    })
}

pub(crate) fn to_u32(table: &'static str, column: &'static str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(table, column, format!("{v} is out of range")))
}

pub(crate) fn to_u64(table: &'static str, column: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(table, column, format!("{v} is out of range")))
}

pub(crate) fn principal(
    table: &'static str,
    is_admin: bool,
    team: Option<String>,
) -> Result<Principal, StoreError> {
    match (is_admin, team) {
        (true, None) => Ok(Principal::Admin),
        (false, Some(t)) => Ok(Principal::Team(t.as_str().into())),
        _ => Err(corrupt(
            table,
            "team_id",
            "admin flag and team disagree".into(),
        )),
    }
}

pub(crate) fn corrupt(table: &'static str, column: &'static str, reason: String) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        reason,
    }
}

/// `('pending', 'placing', 'recovering')`: must be the predicate of the `jobs_schedule` index (migration 4)
/// word for word, or the databases would not use the index (a unit test holds both together).
pub(crate) const QUEUED_SQL: &str = "('pending', 'placing', 'recovering')";

/// A resubmission with an already used `Idempotency-Key`: fine when the stored request digest is the same.
pub(crate) fn same_request(
    k: &crate::model::SubmitKey,
    stored_sha: Option<String>,
) -> Result<(), StoreError> {
    if stored_sha.as_deref() == Some(k.sha().as_str()) {
        Ok(())
    } else {
        Err(StoreError::IdempotencyConflict { key: k.key.clone() })
    }
}

/// The idempotency key of attempt `n` of `job` in the store with instance id `instance`.
pub(crate) fn idempotency_key(instance: &str, job: JobId, n: u32) -> String {
    format!("hedge-{instance}-j{job}-a{n}")
}

/// `('recorded', 'submitted', 'running')`: the in-flight attempt statuses as an SQL list, derived from
/// [`AttemptStatus::is_in_flight`].
pub(crate) fn in_flight_sql() -> String {
    let names: Vec<String> = AttemptStatus::ALL
        .into_iter()
        .filter(|s| s.is_in_flight())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_sql_is_the_index_predicate_and_the_queued_states() {
        let names: Vec<String> = crate::store::QUEUED_STATES
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(QUEUED_SQL, format!("({})", names.join(", ")));
        for m in [
            include_str!("../migrations/sqlite/0004_schedule_queue.sql"),
            include_str!("../migrations/postgres/0004_schedule_queue.sql"),
        ] {
            assert!(m.contains(&format!("WHERE state IN {QUEUED_SQL};")), "{m}");
        }
    }

    #[test]
    fn state_codec_agrees_with_core() {
        for st in JobState::ALL {
            assert_eq!(parse_state("jobs", "state", st.as_str()).unwrap(), st);
        }
        assert!(parse_state("jobs", "state", "Pending").is_err());
        for m in [Market::Committed, Market::OnDemand, Market::Spot] {
            assert_eq!(parse_market("spend", market_str(m)).unwrap(), m);
        }
        assert_eq!(
            in_flight_sql(),
            "('recorded', 'submitted', 'running', 'cancelling', 'orphaned')"
        );
    }
}
