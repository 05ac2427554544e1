//! A solver-neutral linear program (variables, tagged rows, objective) and the one small trait a solver
//! backend implements. The formulation and the decomposition build [`LinearProgram`]s; only
//! `crate::backend` turns them into a solver library's types.

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Var(pub u32);

#[derive(Clone, Debug)]
pub struct VarDef {
    pub lb: f64,
    pub ub: f64,
    pub integer: bool,
    pub cost: f64,
}

/// The constraint families of the model. Every row carries one, so an infeasible model can be explained
/// family by family.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Coverage variables equal the commitments active in a period (a definition, never relaxed).
    CoverageDefinition,
    /// Demand of a scenario, period and accelerator is served.
    DemandCover,
    /// A provider's capacity for an accelerator in a period (commitments plus on-demand and spot).
    ProviderCapacity,
    /// A provider's share of committed GPUs or spend in a period.
    MaxShare,
    /// At least this many providers hold commitments.
    MinProviders,
    /// Losing any `survive_loss_of` providers leaves `keep_fraction` of demand covered.
    Resilience,
    /// Expected cost stays within the budget.
    Budget,
    /// Integer blocks and minimum contract sizes.
    ContractShape,
    /// CVaR auxiliary rows.
    Risk,
    /// Benders optimality cuts on the recourse cost.
    RecourseCut,
}

impl Family {
    /// Whether the family is a policy or a capacity (a relaxable limit) rather than a definition.
    pub fn is_relaxable(self) -> bool {
        matches!(
            self,
            Family::DemandCover
                | Family::ProviderCapacity
                | Family::MaxShare
                | Family::MinProviders
                | Family::Resilience
                | Family::Budget
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Family::CoverageDefinition => "coverage definition",
            Family::DemandCover => "demand must be met (unmet_demand: forbid)",
            Family::ProviderCapacity => "provider capacity",
            Family::MaxShare => "max_share",
            Family::MinProviders => "min_providers",
            Family::Resilience => "survive_loss_of/keep_fraction",
            Family::Budget => "budget_usd",
            Family::ContractShape => "block_gpus/min_gpus",
            Family::Risk => "CVaR",
            Family::RecourseCut => "recourse cut",
        }
    }
}

/// A row's tag: its family and a human description of the cell it constrains ("azure H100 2027-03").
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tag {
    pub family: Family,
    pub detail: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.family.as_str(), self.detail)
    }
}

/// `lo <= Σ coef·var <= hi`.
#[derive(Clone, Debug)]
pub struct Row {
    pub terms: Vec<(Var, f64)>,
    pub lo: f64,
    pub hi: f64,
    pub tag: Tag,
}

/// A minimisation problem.
#[derive(Clone, Debug, Default)]
pub struct LinearProgram {
    pub vars: Vec<VarDef>,
    pub rows: Vec<Row>,
    /// Constant added to the objective.
    pub offset: f64,
}

impl LinearProgram {
    pub fn var(&mut self, lb: f64, ub: f64, cost: f64) -> Var {
        self.vars.push(VarDef {
            lb,
            ub,
            integer: false,
            cost,
        });
        Var(self.vars.len() as u32 - 1)
    }
    pub fn int_var(&mut self, lb: f64, ub: f64, cost: f64) -> Var {
        self.vars.push(VarDef {
            lb,
            ub,
            integer: true,
            cost,
        });
        Var(self.vars.len() as u32 - 1)
    }
    pub fn add_cost(&mut self, v: Var, c: f64) {
        self.vars[v.0 as usize].cost += c;
    }
    fn push(
        &mut self,
        terms: Vec<(Var, f64)>,
        lo: f64,
        hi: f64,
        family: Family,
        detail: impl Into<String>,
    ) {
        self.rows.push(Row {
            terms,
            lo,
            hi,
            tag: Tag {
                family,
                detail: detail.into(),
            },
        });
    }
    pub fn ge(
        &mut self,
        terms: Vec<(Var, f64)>,
        rhs: f64,
        family: Family,
        detail: impl Into<String>,
    ) {
        self.push(terms, rhs, f64::INFINITY, family, detail)
    }
    pub fn le(
        &mut self,
        terms: Vec<(Var, f64)>,
        rhs: f64,
        family: Family,
        detail: impl Into<String>,
    ) {
        self.push(terms, f64::NEG_INFINITY, rhs, family, detail)
    }
    pub fn eq(
        &mut self,
        terms: Vec<(Var, f64)>,
        rhs: f64,
        family: Family,
        detail: impl Into<String>,
    ) {
        self.push(terms, rhs, rhs, family, detail)
    }
    pub fn has_integers(&self) -> bool {
        self.vars.iter().any(|v| v.integer)
    }
    pub fn objective_at(&self, x: &[f64]) -> f64 {
        self.offset
            + self
                .vars
                .iter()
                .zip(x)
                .map(|(v, x)| v.cost * x)
                .sum::<f64>()
    }
    /// The largest violation of any row or bound at `x` (0 when feasible).
    pub fn max_violation(&self, x: &[f64]) -> f64 {
        let mut worst: f64 = 0.0;
        for (v, x) in self.vars.iter().zip(x) {
            worst = worst.max(v.lb - x).max(x - v.ub);
        }
        for r in &self.rows {
            let s: f64 = r.terms.iter().map(|(v, c)| c * x[v.0 as usize]).sum();
            worst = worst.max(r.lo - s).max(s - r.hi);
        }
        worst
    }
    /// The elastic copy: every relaxable row gets a non-negative slack on its violated side, costed at
    /// `1 / scale` per unit; the original objective is dropped. Returns the program and, per slack, the
    /// row index it relaxes and its direction (+1 lower side, -1 upper side).
    pub fn elastic(&self) -> (LinearProgram, Vec<(Var, usize, f64)>) {
        let mut lp = LinearProgram {
            vars: self.vars.clone(),
            rows: Vec::new(),
            offset: 0.0,
        };
        for v in &mut lp.vars {
            v.cost = 0.0;
        }
        let mut slacks = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            let mut row = r.clone();
            if r.tag.family.is_relaxable() {
                let scale = r
                    .terms
                    .iter()
                    .map(|(_, c)| c.abs())
                    .fold(0.0, f64::max)
                    .max(1e-9);
                if r.lo.is_finite() {
                    let s = lp.var(0.0, f64::INFINITY, 1.0 / scale);
                    row.terms.push((s, 1.0));
                    slacks.push((s, i, 1.0));
                }
                if r.hi.is_finite() {
                    let s = lp.var(0.0, f64::INFINITY, 1.0 / scale);
                    row.terms.push((s, -1.0));
                    slacks.push((s, i, -1.0));
                }
                if r.lo.is_finite() && r.hi.is_finite() && r.lo == r.hi {
                    // An equality needs both sides; they are already added above.
                }
            }
            lp.rows.push(row);
        }
        (lp, slacks)
    }
}

/// What a backend returns for a solved program.
#[derive(Clone, Debug)]
pub struct LpSolution {
    pub values: Vec<f64>,
    pub objective: f64,
    /// False when the solver stopped at its time limit with a feasible, not proven optimal, point.
    pub proven: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LpOutcome {
    Infeasible,
    Unbounded,
}

#[derive(Clone, Copy, Debug)]
pub struct SolveOptions {
    /// Relative MIP gap.
    pub mip_gap: f64,
    /// Seconds a MIP may run before the best point found is returned (unproven).
    pub time_limit_s: f64,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            mip_gap: 1e-4,
            time_limit_s: 60.0,
        }
    }
}

/// The one small trait a solver implements.
pub trait LpBackend {
    fn name(&self) -> &'static str;
    /// Solves a minimisation. `Ok(Err(outcome))` is a proven infeasible or unbounded model (data, not a
    /// failure); `Err(message)` is a solver failure.
    fn solve(
        &self,
        lp: &LinearProgram,
        opts: &SolveOptions,
    ) -> Result<Result<LpSolution, LpOutcome>, String>;
}
