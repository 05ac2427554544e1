//! A job's lifecycle as an explicit state machine, and the status of one launch attempt.
//!
//! ```text
//!   Pending ──► Placing ──► Launching ──► Running ──► Succeeded
//!      ▲           │            │            │
//!      └───────────┘            ▼            ▼
//!   (no fit: waits)         Recovering ◄─────┘ (preempted, provider outage, launch failure)
//!                               │  ▲
//!                               ▼  │
//!                            Placing / Running (the attempt turned out alive)
//!
//!   Pending, Placing, Recovering ──► Cancelled          (nothing of the job can be running)
//!   Launching, Running, Recovering ──► Cancelling ──► Cancelled   (only once the driver confirmed the
//!                                          │                      work is gone; GPUs stay counted until then)
//!                                          └──► Succeeded / Failed (the work ended by itself first)
//!   Placing, Launching, Running, Recovering, Cancelling ──► Failed
//! ```
//!
//! [`JobState::can_transition_to`] is the single source of truth for which moves are legal; the store
//! refuses any other move before writing anything.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a job is in its lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Queued: waiting to be placed (possibly held back by a quota or a budget, with the reason recorded).
    Pending,
    /// The placement engine is choosing an offer for it.
    Placing,
    /// A launch attempt has been recorded and the driver is (being) asked to start it.
    Launching,
    /// The driver reports the job running.
    Running,
    /// Lost its capacity (preemption, provider outage, failed launch) and waits to be placed again.
    Recovering,
    /// The user cancelled it while its work may be alive: the broker asks the driver to stop the attempt
    /// and retries until the driver confirms the work is gone. Its GPUs count as used until then.
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 9] = [
        JobState::Pending,
        JobState::Placing,
        JobState::Launching,
        JobState::Running,
        JobState::Recovering,
        JobState::Cancelling,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state a newly submitted job starts in.
    pub const INITIAL: JobState = JobState::Pending;

    /// Succeeded, Failed and Cancelled: nothing leaves them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// States in which the job may hold (or be acquiring) capacity at a provider.
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            JobState::Launching | JobState::Running | JobState::Cancelling
        )
    }

    /// Where a user's cancel moves a job in this state: straight to `Cancelled` when nothing of it can be
    /// running, to `Cancelling` when an attempt may be alive; `None` for a terminal or already cancelling job.
    pub fn cancel_target(self) -> Option<JobState> {
        match self {
            JobState::Pending | JobState::Placing => Some(JobState::Cancelled),
            JobState::Launching | JobState::Running | JobState::Recovering => {
                Some(JobState::Cancelling)
            }
            JobState::Cancelling | JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
                None
            }
        }
    }

    /// Whether `self -> to` is a legal move. A state never moves to itself.
    pub fn can_transition_to(self, to: JobState) -> bool {
        use JobState::*;
        match (self, to) {
            (Pending | Placing | Recovering | Cancelling, Cancelled) => true,
            (Launching | Running | Recovering, Cancelling) => true,
            (Cancelling, Succeeded) | (Cancelling, Failed) => true,
            (Pending, Placing) => true,
            // Placement found nothing that fits (or a quota/budget holds the job back): wait again.
            (Placing, Pending) | (Placing, Launching) | (Placing, Failed) => true,
            (Launching, Running) | (Launching, Recovering) | (Launching, Failed) => true,
            // Running -> Succeeded directly when a short job finishes between two observations.
            (Launching, Succeeded) => true,
            (Running, Succeeded) | (Running, Failed) | (Running, Recovering) => true,
            // Recovering -> Running: the attempt that looked lost was observed alive after all.
            (Recovering, Placing) | (Recovering, Running) | (Recovering, Failed) => true,
            _ => false,
        }
    }

    /// The legal successors of this state, in [`JobState::ALL`] order.
    pub fn successors(self) -> impl Iterator<Item = JobState> {
        JobState::ALL
            .into_iter()
            .filter(move |&t| self.can_transition_to(t))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Placing => "placing",
            JobState::Launching => "launching",
            JobState::Running => "running",
            JobState::Recovering => "recovering",
            JobState::Cancelling => "cancelling",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job state or attempt status name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

impl FromStr for JobState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "job state",
                value: s.to_owned(),
            })
    }
}

/// Replays a sequence of `(from, to)` moves from [`JobState::INITIAL`]: the final state, or the index of the
/// first move that does not start where the previous one ended or is illegal.
pub fn replay(moves: impl IntoIterator<Item = (JobState, JobState)>) -> Result<JobState, usize> {
    let mut cur = JobState::INITIAL;
    for (i, (from, to)) in moves.into_iter().enumerate() {
        if from != cur || !from.can_transition_to(to) {
            return Err(i);
        }
        cur = to;
    }
    Ok(cur)
}

/// The status of one launch attempt. An attempt is recorded (`Recorded`) BEFORE the driver is called, so
/// that after a crash the reconciler finds it and asks the driver by idempotency key instead of launching
/// again.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Written to the store; the driver may or may not have received the submit.
    Recorded,
    /// The driver accepted the submit and returned a handle.
    Submitted,
    Running,
    /// Its job was cancelled; the driver is asked to stop it until it confirms the work is gone. Still in
    /// flight (its GPUs count as used).
    Cancelling,
    /// Abandoned by failover: its job moved on while its provider did not answer. Still in flight: it is
    /// stopped, and the stop confirmed, once the provider answers again (also after a broker restart).
    Orphaned,
    Succeeded,
    Failed,
    /// The driver no longer knows the attempt (preempted, provider outage, never arrived).
    Lost,
    Cancelled,
}

impl AttemptStatus {
    pub const ALL: [AttemptStatus; 9] = [
        AttemptStatus::Recorded,
        AttemptStatus::Submitted,
        AttemptStatus::Running,
        AttemptStatus::Cancelling,
        AttemptStatus::Orphaned,
        AttemptStatus::Succeeded,
        AttemptStatus::Failed,
        AttemptStatus::Lost,
        AttemptStatus::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            AttemptStatus::Succeeded
                | AttemptStatus::Failed
                | AttemptStatus::Lost
                | AttemptStatus::Cancelled
        )
    }

    /// In flight: the attempt may hold capacity and must be asked about after a restart.
    pub fn is_in_flight(self) -> bool {
        !self.is_terminal()
    }

    /// Statuses only move forward (Recorded < Submitted < Running < Cancelling | Orphaned < terminal);
    /// re-stating the current non-terminal status is allowed (an idempotent update, e.g. learning the
    /// driver handle late). Cancelling and Orphaned only end: they never go back to running.
    pub fn can_become(self, to: AttemptStatus) -> bool {
        use AttemptStatus::*;
        match (self, to) {
            (s, _) if s.is_terminal() => false,
            (s, t) if s == t => true,
            (Cancelling | Orphaned, t) => t.is_terminal(),
            (Recorded, _) => true,
            (Submitted, Recorded) => false,
            (Submitted, _) => true,
            (Running, Recorded) | (Running, Submitted) => false,
            (Running, _) => true,
            _ => false,
        }
    }

    /// The attempt is being stopped by the broker (a cancel or an orphan), so an observation of it still
    /// running is not news and a disappearance is the confirmation.
    pub fn is_being_stopped(self) -> bool {
        matches!(self, AttemptStatus::Cancelling | AttemptStatus::Orphaned)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Recorded => "recorded",
            AttemptStatus::Submitted => "submitted",
            AttemptStatus::Running => "running",
            AttemptStatus::Cancelling => "cancelling",
            AttemptStatus::Orphaned => "orphaned",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Lost => "lost",
            AttemptStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for AttemptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttemptStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AttemptStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "attempt status",
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn terminal_states_have_no_successors() {
        for s in JobState::ALL {
            assert_eq!(s.is_terminal(), s.successors().next().is_none(), "{s}");
            assert!(!s.can_transition_to(s), "{s} -> itself");
        }
    }

    #[test]
    fn every_state_is_reachable_and_can_finish() {
        // Reachable from Pending.
        let mut seen = vec![JobState::Pending];
        let mut i = 0;
        while i < seen.len() {
            for t in seen[i].successors() {
                if !seen.contains(&t) {
                    seen.push(t);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), JobState::ALL.len());
        // Every non-terminal state can be cancelled, directly or through Cancelling.
        for s in JobState::ALL.into_iter().filter(|s| !s.is_terminal()) {
            let via = s.cancel_target().unwrap_or(s);
            assert!(s == via || s.can_transition_to(via), "{s} -> {via}");
            assert!(
                via == JobState::Cancelled || via.can_transition_to(JobState::Cancelled),
                "{via} -> cancelled"
            );
        }
    }

    #[test]
    fn cancelling_waits_for_confirmation() {
        use JobState::*;
        // Work that may be alive is never reported cancelled directly.
        for s in [Launching, Running] {
            assert!(!s.can_transition_to(Cancelled), "{s}");
            assert_eq!(s.cancel_target(), Some(Cancelling));
        }
        assert!(Cancelling.holds_capacity());
        assert!(Cancelling.can_transition_to(Cancelled));
        assert!(!Cancelling.can_transition_to(Running));
        assert!(!Cancelling.can_transition_to(Recovering));
        assert_eq!(Pending.cancel_target(), Some(Cancelled));
        assert_eq!(Cancelled.cancel_target(), None);
        use AttemptStatus as A;
        assert!(A::Running.can_become(A::Cancelling));
        assert!(A::Running.can_become(A::Orphaned));
        assert!(!A::Cancelling.can_become(A::Running));
        assert!(!A::Orphaned.can_become(A::Running));
        assert!(!A::Orphaned.can_become(A::Cancelling));
        assert!(A::Orphaned.can_become(A::Cancelled));
        assert!(A::Cancelling.is_in_flight() && A::Orphaned.is_in_flight());
    }

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for s in AttemptStatus::ALL {
            assert_eq!(s.as_str().parse::<AttemptStatus>().unwrap(), s);
        }
        assert!("runing".parse::<JobState>().is_err());
    }

    #[test]
    fn happy_and_recovery_paths() {
        use JobState::*;
        let path = [
            Pending, Placing, Launching, Recovering, Placing, Launching, Running, Succeeded,
        ];
        assert_eq!(replay(path.windows(2).map(|w| (w[0], w[1]))), Ok(Succeeded));
        assert_eq!(replay([(Pending, Running)]), Err(0));
        assert_eq!(replay([(Pending, Placing), (Launching, Running)]), Err(1));
    }

    #[test]
    fn attempt_status_only_moves_forward() {
        use AttemptStatus::*;
        assert!(Recorded.can_become(Submitted));
        assert!(Submitted.can_become(Submitted));
        assert!(!Running.can_become(Submitted));
        assert!(!Lost.can_become(Running));
        assert!(!Succeeded.can_become(Succeeded));
    }

    proptest! {
        #[test]
        fn random_walks_stay_legal(choices in proptest::collection::vec(0usize..9, 0..40)) {
            let mut cur = JobState::INITIAL;
            let mut moves = vec![];
            for c in choices {
                let next: Vec<_> = cur.successors().collect();
                if next.is_empty() { break; }
                let to = next[c % next.len()];
                moves.push((cur, to));
                cur = to;
            }
            prop_assert_eq!(replay(moves), Ok(cur));
        }
    }
}
