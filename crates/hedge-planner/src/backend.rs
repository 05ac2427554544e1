//! The solver backends, through `good_lp`. This is the only module that sees `good_lp` types: it turns a
//! [`LinearProgram`] into a `good_lp` model, solves it and hands back plain values.
//!
//! Shipped backends: COIN-OR CBC (with CLP for LPs; links Debian's `coinor-libcbc-dev`) and `microlp`
//! (pure Rust, for small models). HiGHS is not shipped: its bundled C++ build takes 8–15 minutes on the
//! 2-core CI machines (see BENCHMARKS.md, section planner).

use crate::lp::{LinearProgram, LpBackend, LpOutcome, LpSolution, SolveOptions};
use good_lp::solvers::{ResolutionError, SolutionStatus, WithMipGap, WithTimeLimit};
use good_lp::{variable, Expression, ProblemVariables, Solution, SolverModel, Variable};
use serde::{Deserialize, Serialize};

/// Which solver to use.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    #[default]
    Cbc,
    Microlp,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Cbc, Backend::Microlp];
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "cbc" | "coin_cbc" => Some(Backend::Cbc),
            "microlp" => Some(Backend::Microlp),
            _ => None,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

struct Built {
    vars: ProblemVariables,
    cols: Vec<Variable>,
    objective: Expression,
    constraints: Vec<good_lp::Constraint>,
}

fn build(lp: &LinearProgram) -> Built {
    let mut vars = ProblemVariables::new();
    let mut cols = Vec::with_capacity(lp.vars.len());
    let mut objective = Expression::with_capacity(lp.vars.len());
    for v in &lp.vars {
        let mut d = variable();
        if v.lb.is_finite() {
            d = d.min(v.lb);
        } else {
            d = d.min(f64::NEG_INFINITY);
        }
        if v.ub.is_finite() {
            d = d.max(v.ub);
        }
        if v.integer {
            d = d.integer();
        }
        let c = vars.add(d);
        if v.cost != 0.0 {
            objective.add_mul(v.cost, c);
        }
        cols.push(c);
    }
    let mut constraints = Vec::with_capacity(lp.rows.len());
    for r in &lp.rows {
        let mut e = Expression::with_capacity(r.terms.len());
        for &(v, c) in &r.terms {
            e.add_mul(c, cols[v.0 as usize]);
        }
        if r.lo == r.hi {
            constraints.push(e.eq(r.lo));
        } else {
            if r.lo.is_finite() {
                constraints.push(e.clone().geq(r.lo));
            }
            if r.hi.is_finite() {
                constraints.push(e.leq(r.hi));
            }
        }
    }
    Built {
        vars,
        cols,
        objective,
        constraints,
    }
}

fn finish<S: Solution>(
    lp: &LinearProgram,
    cols: &[Variable],
    r: Result<S, ResolutionError>,
) -> Result<Result<LpSolution, LpOutcome>, String> {
    match r {
        Ok(s) => {
            let values: Vec<f64> = cols.iter().map(|&c| s.value(c)).collect();
            // A solver that stops without a feasible point (CBC may, on a MILP) is treated as infeasible.
            let scale = values.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            if lp.max_violation(&values) > 1e-5 * scale.max(1.0) + 1e-3 {
                return Ok(Err(LpOutcome::Infeasible));
            }
            let objective = lp.objective_at(&values);
            let proven = !matches!(s.status(), SolutionStatus::TimeLimit);
            Ok(Ok(LpSolution {
                values,
                objective,
                proven,
            }))
        }
        Err(ResolutionError::Infeasible) => Ok(Err(LpOutcome::Infeasible)),
        Err(ResolutionError::Unbounded) => Ok(Err(LpOutcome::Unbounded)),
        Err(e) => Err(e.to_string()),
    }
}

impl LpBackend for Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Cbc => "cbc",
            Backend::Microlp => "microlp",
        }
    }

    fn solve(
        &self,
        lp: &LinearProgram,
        opts: &SolveOptions,
    ) -> Result<Result<LpSolution, LpOutcome>, String> {
        let Built {
            vars,
            cols,
            objective,
            constraints,
        } = build(lp);
        let integer = lp.has_integers();
        match self {
            Backend::Cbc => {
                let mut m = vars.minimise(objective).using(good_lp::coin_cbc);
                m.set_parameter("log", "0");
                m.set_parameter("slog", "0");
                for c in constraints {
                    m.add_constraint(c);
                }
                if integer {
                    m = m
                        .with_mip_gap(opts.mip_gap as f32)
                        .map_err(|e| e.to_string())?
                        .with_time_limit(opts.time_limit_s);
                }
                finish(lp, &cols, m.solve())
            }
            Backend::Microlp => {
                let mut m = vars.minimise(objective).using(good_lp::microlp);
                for c in constraints {
                    m.add_constraint(c);
                }
                if integer {
                    m = m
                        .with_mip_gap(opts.mip_gap as f32)
                        .map_err(|e| e.to_string())?
                        .with_time_limit(opts.time_limit_s);
                }
                finish(lp, &cols, m.solve())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::Family;

    #[test]
    fn every_backend_solves_a_tiny_milp_and_detects_infeasibility() {
        for b in Backend::ALL {
            let mut lp = LinearProgram::default();
            let x = lp.int_var(0.0, 10.0, -1.0);
            let y = lp.var(0.0, f64::INFINITY, -1.0);
            lp.le(vec![(x, 2.0), (y, 1.0)], 7.0, Family::Budget, "t");
            lp.le(vec![(y, 1.0)], 0.5, Family::Budget, "t");
            let s = b.solve(&lp, &SolveOptions::default()).unwrap().unwrap();
            assert_eq!(s.values[0].round(), 3.0, "{b}");
            assert!((s.objective + 3.5).abs() < 1e-6, "{b}: {}", s.objective);
            lp.ge(vec![(x, 1.0)], 11.0, Family::Budget, "t");
            assert_eq!(
                b.solve(&lp, &SolveOptions::default()).unwrap().unwrap_err(),
                LpOutcome::Infeasible,
                "{b}"
            );
        }
    }
}
