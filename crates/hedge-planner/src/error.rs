//! The planner's one error enum. "Infeasible" is not here: it is a result ([`crate::PlanOutcome`]).

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A field of the plan file (or a portfolio, or a CLI argument) is wrong.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The solver failed (not: proved the model infeasible).
    #[error("solver {backend} failed: {reason}")]
    Solver {
        backend: &'static str,
        reason: String,
    },
    /// A combination the planner does not build.
    #[error("unsupported: {what}")]
    Unsupported { what: String },
}
