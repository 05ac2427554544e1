//! Parsing a job submission: one SkyPilot task document (YAML, or JSON which is YAML too) with Hedge's
//! extra top-level fields `team`, `priority` and `deadline`. Every failure names the field.

use crate::ApiError;
use hedge_core::{Accelerator, TaskSpec, TeamId, Timestamp};
use serde_norway::Value;
use std::collections::BTreeSet;

/// Top-level fields that are Hedge's, not SkyPilot's.
/// The longest `time_limit_seconds` a submission may state: a year (366 days).
pub const MAX_TIME_LIMIT_SECONDS: u64 = 366 * 86_400;

const HEDGE_FIELDS: &[&str] = &["team", "priority", "deadline", "time_limit_seconds"];

/// A parsed submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub team: Option<TeamId>,
    pub priority: i32,
    pub deadline: Option<Timestamp>,
    pub spec: TaskSpec,
    /// Warnings of the task parser (unknown fields), returned to the client.
    pub warnings: Vec<String>,
}

pub fn parse(body: &[u8], known: &BTreeSet<Accelerator>) -> Result<Submission, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_yaml",
            "body",
            format!("the body is not UTF-8: {e}"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_yaml",
            "body",
            "the body is empty; send a task YAML",
        ));
    }
    // A JSON body is handed to the YAML parser re-encoded: JSON may escape characters (surrogate pairs)
    // that YAML's escapes cannot, and serde_json writes them as plain UTF-8.
    let reencoded;
    let text = match text
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<serde_json::Value>(text))
    {
        Some(Ok(v)) => {
            reencoded = serde_json::to_string(&v).unwrap_or_default();
            reencoded.as_str()
        }
        _ => text,
    };
    let parsed = hedge_core::task_yaml::parse(text).map_err(|e| match e {
        hedge_core::task_yaml::TaskYamlError::Syntax { message, .. } => {
            ApiError::bad_request("invalid_yaml", "body", format!("invalid YAML: {message}"))
        }
        hedge_core::task_yaml::TaskYamlError::Field { path, reason } => {
            let code = if path.ends_with("accelerators") {
                "invalid_accelerators"
            } else {
                "invalid_task"
            };
            ApiError::bad_request(code, path.clone(), format!("{path}: {reason}"))
        }
    })?;
    let doc: Value = serde_norway::from_str(text)
        .map_err(|e| ApiError::bad_request("invalid_yaml", "body", format!("invalid YAML: {e}")))?;
    let get = |k: &str| {
        doc.as_mapping()
            .and_then(|m| m.get(k))
            .filter(|v| !v.is_null())
    };
    let team = match get("team") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(TeamId::new(s.trim())),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_team",
                "team",
                "team must be a non-empty string",
            ))
        }
    };
    let priority = match get("priority") {
        None => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                    .map(|f| f as i64)
            })
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_priority",
                    "priority",
                    "priority must be a whole number",
                )
            })?,
    };
    let deadline = match get("deadline") {
        None => None,
        Some(v) => Some(parse_time(v).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_deadline",
                "deadline",
                "deadline must be seconds since the epoch or YYYY-MM-DDTHH:MM:SSZ",
            )
        })?),
    };
    let time_limit_seconds = match get("time_limit_seconds") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15).map(|f| f as u64))
                .filter(|s| (1..=MAX_TIME_LIMIT_SECONDS).contains(s))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_time_limit",
                        "time_limit_seconds",
                        format!("time_limit_seconds must be a whole number of seconds from 1 to {MAX_TIME_LIMIT_SECONDS}"),
                    )
                })?,
        ),
    };
    for (i, r) in parsed.task.resources.iter().enumerate() {
        if let Some(a) = &r.accelerators {
            if !known.contains(&a.name) {
                let field = if parsed.task.resources.len() == 1 {
                    "resources.accelerators".to_owned()
                } else {
                    format!("resources[{i}].accelerators")
                };
                return Err(ApiError::bad_request(
                    "unknown_accelerator",
                    field,
                    format!("accelerator {:?} is not in the catalog", a.name.as_str()),
                ));
            }
        }
    }
    if parsed
        .task
        .run
        .as_deref()
        .is_none_or(|r| r.trim().is_empty())
    {
        return Err(ApiError::bad_request(
            "invalid_task",
            "run",
            "the task has no run command",
        ));
    }
    let control = |t: &str| {
        t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    };
    if parsed.task.run.as_deref().is_some_and(control) {
        return Err(ApiError::bad_request(
            "invalid_task",
            "run",
            "the run command contains control characters",
        ));
    }
    if parsed.task.name.as_deref().is_some_and(control) {
        return Err(ApiError::bad_request(
            "invalid_task",
            "name",
            "the name contains control characters",
        ));
    }
    let warnings = parsed
        .warnings
        .into_iter()
        .filter(|w| !HEDGE_FIELDS.contains(&w.path.as_str()))
        .map(|w| w.to_string())
        .collect();
    let spec = hedge_core::TaskSpec {
        time_limit_seconds,
        ..parsed.task
    };
    Ok(Submission {
        team,
        priority,
        deadline,
        spec,
        warnings,
    })
}

/// Seconds since the epoch, or RFC 3339 in UTC (`2027-03-01T00:00:00Z`).
fn parse_time(v: &Value) -> Option<Timestamp> {
    if let Some(n) = v.as_i64() {
        return Some(Timestamp::from_unix(n));
    }
    Timestamp::parse_civil(v.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<Accelerator> {
        [Accelerator::parse("H100").unwrap()].into_iter().collect()
    }

    fn err(body: &str) -> (u16, &'static str, String) {
        let e = parse(body.as_bytes(), &known()).unwrap_err();
        (e.status.as_u16(), e.code, e.field.unwrap_or_default())
    }

    #[test]
    fn accepts_a_task_with_hedge_fields() {
        let s = parse(
            b"name: t\nteam: ml\npriority: 5\ndeadline: 2027-03-01T00:00:00Z\nresources: {accelerators: H100:2}\nrun: echo hi\n",
            &known(),
        )
        .unwrap();
        assert_eq!(s.team, Some(TeamId::new("ml")));
        assert_eq!(s.priority, 5);
        assert_eq!(s.deadline.unwrap().to_string(), "2027-03-01T00:00:00Z");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let json = parse(
            br#"{"team": "ml", "resources": {"accelerators": "H100:1"}, "run": "true"}"#,
            &known(),
        )
        .unwrap();
        assert_eq!(
            json.spec.resources[0].accelerators.as_ref().unwrap().count,
            1
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(err("run: [unclosed"), (400, "invalid_yaml", "body".into()));
        assert_eq!(
            err("resources: {accelerators: Z999:1}\nrun: x"),
            (400, "unknown_accelerator", "resources.accelerators".into())
        );
        assert_eq!(
            err("resources: {accelerators: H100:0}\nrun: x"),
            (400, "invalid_accelerators", "resources.accelerators".into())
        );
        assert_eq!(
            err("resources: {accelerators: H100:-2}\nrun: x"),
            (400, "invalid_accelerators", "resources.accelerators".into())
        );
        assert_eq!(
            err("priority: high\nrun: x"),
            (400, "invalid_priority", "priority".into())
        );
        assert_eq!(
            err("deadline: tomorrow\nrun: x"),
            (400, "invalid_deadline", "deadline".into())
        );
        assert_eq!(
            err("deadline: 2027-02-31T00:00:00Z\nrun: x"),
            (400, "invalid_deadline", "deadline".into())
        );
        assert_eq!(err("team: 3\nrun: x"), (400, "invalid_team", "team".into()));
        assert_eq!(err("name: x"), (400, "invalid_task", "run".into()));
        assert_eq!(err(""), (400, "invalid_yaml", "body".into()));
    }

    /// The fuzz target's body ([`crate::fuzzing::submission`]), on stable: over seed bodies and, for a few RNG seeds, byte-level mutations of
    /// them (flips, truncations, splices), as libFuzzer would make.
    #[test]
    fn fuzz_checks_over_seeds() {
        use rand::{Rng, SeedableRng};
        const JUNK: &[u8] = b"\n:-{}[]&*!|>'\"#%@`0123456789 ";
        let seeds: &[&[u8]] = &[
            b"name: t\nteam: ml\npriority: 5\ndeadline: 2027-03-01T00:00:00Z\nresources: {accelerators: H100:2}\nrun: echo hi\n",
            br#"{"team": "ml", "priority": -3, "deadline": 1900000000, "resources": {"accelerators": "H100:1"}, "run": "true"}"#,
            b"num_nodes: 2\nresources:\n  any_of:\n    - {accelerators: H100:8}\n    - {accelerators: {H100: 4}}\nrun: |\n  python train.py\n",
            b"resources: {accelerators: H100:99999999999}\nrun: x\n",
            b"priority: 99999999999\nrun: x\n",
            b"deadline: 9999-12-31T23:59:60Z\nrun: x\n",
            b"deadline: -9223372036854775808\nrun: x\n",
            b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\nrun: x\n",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b"\xff\xfe run: x",
            b"---\nrun: x\n---\nrun: y\n",
            b"? [complex, key]\n: value\nrun: x\n",
        ];
        for s in seeds {
            crate::fuzzing::submission(s);
        }
        for seed in 0..8u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            for _ in 0..300 {
                let mut body = seeds[rng.gen_range(0..seeds.len())].to_vec();
                for _ in 0..rng.gen_range(1..6) {
                    match rng.gen_range(0..4) {
                        0 if !body.is_empty() => {
                            let i = rng.gen_range(0..body.len());
                            body[i] ^= 1 << rng.gen_range(0..8);
                        }
                        1 if !body.is_empty() => body.truncate(rng.gen_range(0..body.len())),
                        2 => {
                            let other = seeds[rng.gen_range(0..seeds.len())];
                            let (a, b) = (
                                rng.gen_range(0..=body.len()),
                                rng.gen_range(0..=other.len()),
                            );
                            body.splice(a..a, other[b..].iter().copied());
                        }
                        _ => {
                            let i = rng.gen_range(0..=body.len());
                            body.insert(i, JUNK[rng.gen_range(0..JUNK.len())]);
                        }
                    }
                }
                crate::fuzzing::submission(&body);
            }
        }
    }

    proptest::proptest! {
        /// Any body is a submission or a 4xx naming a field; never a panic, never a 5xx.
        #[test]
        fn any_body_is_accepted_or_a_4xx_naming_a_field(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Err(e) = parse(&body, &known()) {
                proptest::prop_assert!(e.status.is_client_error());
                proptest::prop_assert!(e.field.is_some());
            }
        }

        #[test]
        fn yaml_like_bodies(team in "[a-z]{0,5}", prio in "-?[0-9a-z]{0,4}", acc in "[A-Z0-9:-]{0,8}", run in "[ -~]{0,20}") {
            let body = format!("team: {team}\npriority: {prio}\nresources: {{accelerators: {acc}}}\nrun: {run}\n");
            if let Err(e) = parse(body.as_bytes(), &known()) {
                proptest::prop_assert!(e.status.is_client_error());
                proptest::prop_assert!(e.field.is_some());
            }
        }
    }
}
