//! SkyPilot task YAML -> [`TaskSpec`]. The one place where task files become validated values.
//!
//! Accepted (SkyPilot 0.14 spelling):
//! - top level: `name`, `num_nodes`, `resources`, `run`, `setup`, `envs` (a mapping of shell-safe names to
//!   scalars), `workdir` (a local directory), `file_mounts` (remote path -> local path; cloud storage
//!   sources are refused); accepted and not interpreted: `secrets`, `volumes`, `config`, `service`, `inputs`,
//!   `outputs`. Whether a provider can honour `workdir` and `file_mounts` is its driver's capability.
//! - `resources`: `accelerators` (`H100:8`, `{H100: 8}`, a list = ordered alternatives, a mapping of several
//!   = any-of set such as `{H100:8, A100:8}`), `cloud`, `infra` (`aws`, `aws/us-east-1`,
//!   `aws/us-east-1/use1-az1`, `*` for any part), `region`, `zone`, `use_spot`, `cpus` (`4` exactly, `4+`
//!   at least), `memory` (GiB, same forms, optional `GB` suffix), `instance_type`, `any_of` and `ordered`
//!   (lists of resource mappings that override the fields around them); accepted and not interpreted:
//!   `disk_size`, `disk_tier`, `ports`, `image_id`, `labels`, `accelerator_args`, `job_recovery`,
//!   `spot_recovery`, `autostop`, `network_tier`.
//!
//! An unknown field is a [`Warning`]; a wrong value is a [`TaskYamlError`] naming the field path, e.g.
//! `resources.accelerators: count must be a positive whole number, got 0`. Nothing here panics on any input.

use crate::accel::{AccelRequest, Accelerator};
use crate::ids::{ProviderId, RegionId, ZoneId};
use crate::task::{Bound, Preference, ResourceRequest, SpotPref, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::fmt;

/// SkyPilot's cloud names. Another name is accepted (a locally configured provider) with a warning.
pub const SKYPILOT_CLOUDS: &[&str] = &[
    "aws",
    "azure",
    "cudo",
    "do",
    "fluidstack",
    "gcp",
    "hyperbolic",
    "ibm",
    "kubernetes",
    "lambda",
    "nebius",
    "oci",
    "paperspace",
    "primeintellect",
    "runpod",
    "scp",
    "seeweb",
    "ssh",
    "vast",
    "vsphere",
];

/// Short names SkyPilot accepts for a cloud.
const CLOUD_ALIASES: &[(&str, &str)] = &[("k8s", "kubernetes"), ("lambdalabs", "lambda")];

const TOP_KNOWN_IGNORED: &[&str] = &[
    "secrets", "volumes", "config", "service", "inputs", "outputs",
];
const RES_KNOWN_IGNORED: &[&str] = &[
    "disk_size",
    "disk_tier",
    "ports",
    "image_id",
    "labels",
    "accelerator_args",
    "job_recovery",
    "spot_recovery",
    "autostop",
    "network_tier",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskYamlError {
    /// `message` is the YAML parser's, which names the line and column.
    #[error("invalid YAML: {message}")]
    Syntax {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
}

/// Something accepted but probably not what the author meant (an unknown field, an unknown cloud).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A parsed task plus the warnings met on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTask {
    pub task: TaskSpec,
    pub warnings: Vec<Warning>,
}

/// Unbalanced `[`/`{` beyond this depth are refused before YAML parsing: the YAML parser's time grows with
/// the square of the flow nesting depth, and its deserializer refuses depth beyond 128 anyway.
const MAX_FLOW_DEPTH: usize = 256;

/// Parses one SkyPilot task YAML document.
pub fn parse(text: &str) -> Result<ParsedTask, TaskYamlError> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        for c in line.bytes() {
            match c {
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_FLOW_DEPTH {
                return Err(TaskYamlError::Syntax {
                    line: Some(i + 1),
                    column: None,
                    message: format!(
                        "more than {MAX_FLOW_DEPTH} nested [ or {{ by line {}",
                        i + 1
                    ),
                });
            }
        }
    }
    let value: Value = serde_norway::from_str(text).map_err(|e| {
        let loc = e.location();
        TaskYamlError::Syntax {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })?;
    let mut p = Parser {
        warnings: Vec::new(),
    };
    let task = p.task(&value)?;
    Ok(ParsedTask {
        task,
        warnings: p.warnings,
    })
}

fn err(path: &str, reason: impl Into<String>) -> TaskYamlError {
    TaskYamlError::Field {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A short rendering of a YAML value for error messages.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut s = s.clone();
            if s.chars().count() > 40 {
                s = s.chars().take(40).collect::<String>() + "...";
            }
            format!("{s:?}")
        }
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// Resource fields as written, before expansion into alternatives. Later layers override earlier ones.
#[derive(Clone, Default)]
struct Layer {
    accelerators: Option<Accels>,
    provider: Option<ProviderId>,
    region: Option<RegionId>,
    zone: Option<ZoneId>,
    spot: Option<SpotPref>,
    cpus: Option<Bound<u32>>,
    memory: Option<Bound<u64>>,
    instance_type: Option<String>,
}

#[derive(Clone)]
enum Accels {
    One(AccelRequest),
    /// A YAML list: try in order.
    Ordered(Vec<AccelRequest>),
    /// A mapping or set of several: cheapest of all.
    AnyOf(Vec<AccelRequest>),
}

struct Parser {
    warnings: Vec<Warning>,
}

impl Parser {
    fn warn(&mut self, path: String, message: impl Into<String>) {
        self.warnings.push(Warning {
            path,
            message: message.into(),
        });
    }

    fn mapping<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Mapping, TaskYamlError> {
        match v {
            Value::Mapping(m) => Ok(m),
            other => Err(err(
                if path.is_empty() { "task" } else { path },
                format!("expected a mapping, got {}", show(other)),
            )),
        }
    }

    /// The mapping's entries with string keys; a non-string key is an error.
    fn entries<'v>(
        &self,
        m: &'v Mapping,
        path: &str,
    ) -> Result<Vec<(&'v str, &'v Value)>, TaskYamlError> {
        m.iter()
            .map(|(k, v)| match k {
                Value::String(s) => Ok((s.as_str(), v)),
                other => Err(err(
                    if path.is_empty() { "task" } else { path },
                    format!("field names must be text, got {}", show(other)),
                )),
            })
            .collect()
    }

    fn task(&mut self, v: &Value) -> Result<TaskSpec, TaskYamlError> {
        if v.is_null() {
            // An empty file is a task with default resources, as in SkyPilot.
            return Ok(TaskSpec::single(ResourceRequest::default()));
        }
        let m = self.mapping(v, "")?;
        let mut name = None;
        let mut run = None;
        let mut num_nodes = 1;
        let mut resources = None;
        let (mut setup, mut workdir) = (None, None);
        let (mut envs, mut file_mounts) = (BTreeMap::new(), BTreeMap::new());
        for (k, val) in self.entries(m, "")? {
            match k {
                "name" => name = opt_string(val, "name")?,
                "run" => run = opt_string(val, "run")?,
                "setup" => setup = opt_string(val, "setup")?,
                "workdir" => workdir = opt_string(val, "workdir")?.filter(|w| !w.trim().is_empty()),
                "envs" => envs = self.envs(val)?,
                "file_mounts" => file_mounts = self.file_mounts(val)?,
                "num_nodes" => num_nodes = positive_u32(val, "num_nodes")?,
                "resources" => resources = Some(val),
                k if TOP_KNOWN_IGNORED.contains(&k) => {}
                k => self.warn(k.to_owned(), "unknown field, ignored"),
            }
        }
        let (resources, preference) = match resources {
            None | Some(Value::Null) => (vec![ResourceRequest::default()], Preference::Cheapest),
            Some(r) => self.resources(r)?,
        };
        Ok(TaskSpec {
            name,
            run,
            num_nodes,
            resources,
            preference,
            setup,
            envs,
            workdir,
            file_mounts,
            time_limit_seconds: None,
        })
    }

    /// `envs:` a mapping of shell-safe names to scalar values (numbers and booleans as written).
    fn envs(&mut self, v: &Value) -> Result<BTreeMap<String, String>, TaskYamlError> {
        let mut out = BTreeMap::new();
        if v.is_null() {
            return Ok(out);
        }
        let m = self.mapping(v, "envs")?;
        for (k, val) in self.entries(m, "envs")? {
            let path = format!("envs.{k}");
            let valid = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(err(
                    &path,
                    "a variable name is letters, digits and '_', not starting with a digit",
                ));
            }
            if k.starts_with("HEDGE_") {
                return Err(err(
                    &path,
                    "HEDGE_* names are reserved for the variables Hedge sets",
                ));
            }
            let value = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(err(
                        &path,
                        format!(
                            "expected a text, number or boolean value, got {}",
                            show(other)
                        ),
                    ))
                }
            };
            out.insert(k.to_owned(), value);
        }
        Ok(out)
    }

    /// `file_mounts:` remote path -> local source path. Cloud storage sources (`s3://`, a mapping with
    /// `source`/`store`) are refused: no driver here can mount them.
    fn file_mounts(&mut self, v: &Value) -> Result<BTreeMap<String, String>, TaskYamlError> {
        let mut out = BTreeMap::new();
        if v.is_null() {
            return Ok(out);
        }
        let m = self.mapping(v, "file_mounts")?;
        for (k, val) in self.entries(m, "file_mounts")? {
            let path = format!("file_mounts.{k}");
            if k.trim().is_empty() {
                return Err(err("file_mounts", "a mount target must not be empty"));
            }
            let src = match val {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
                other => {
                    return Err(err(
                        &path,
                        format!("expected a local source path, got {}", show(other)),
                    ))
                }
            };
            if src.contains("://") {
                return Err(err(
                    &path,
                    format!("{src:?} is cloud storage; only local paths can be mounted"),
                ));
            }
            out.insert(k.to_owned(), src);
        }
        Ok(out)
    }

    fn resources(
        &mut self,
        v: &Value,
    ) -> Result<(Vec<ResourceRequest>, Preference), TaskYamlError> {
        let path = "resources";
        let m = self.mapping(v, path)?;
        let mut base = Layer::default();
        let mut any_of = None;
        let mut ordered = None;
        for (k, val) in self.entries(m, path)? {
            match k {
                "any_of" => any_of = Some(val),
                "ordered" => ordered = Some(val),
                _ => self.field(&mut base, k, val, path)?,
            }
        }
        self.check_infra_conflicts(m, path)?;
        let (layers, mut ordered_src, mut anyof_src) = match (any_of, ordered) {
            (Some(_), Some(_)) => return Err(err(path, "use either any_of or ordered, not both")),
            (Some(list), None) => (self.layers(&base, list, "resources.any_of")?, false, true),
            (None, Some(list)) => (self.layers(&base, list, "resources.ordered")?, true, false),
            (None, None) => (vec![base], false, false),
        };
        let mut out = Vec::new();
        for layer in &layers {
            let accels: Vec<Option<AccelRequest>> = match &layer.accelerators {
                None => vec![None],
                Some(Accels::One(a)) => vec![Some(a.clone())],
                Some(Accels::Ordered(v)) => {
                    ordered_src |= v.len() > 1;
                    v.iter().cloned().map(Some).collect()
                }
                Some(Accels::AnyOf(v)) => {
                    anyof_src |= v.len() > 1;
                    v.iter().cloned().map(Some).collect()
                }
            };
            for a in accels {
                let r = ResourceRequest {
                    accelerators: a,
                    provider: layer.provider.clone(),
                    region: layer.region.clone(),
                    zone: layer.zone.clone(),
                    spot: layer.spot.unwrap_or_default(),
                    cpus_milli: layer.cpus,
                    memory_mib: layer.memory,
                    instance_type: layer.instance_type.clone(),
                };
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        if ordered_src && anyof_src {
            return Err(err(path, "cannot mix ordered alternatives (ordered, or a list of accelerators) with any-of alternatives (any_of, or a set of accelerators)"));
        }
        let pref = if ordered_src {
            Preference::Ordered
        } else {
            Preference::Cheapest
        };
        Ok((out, pref))
    }

    fn layers(
        &mut self,
        base: &Layer,
        list: &Value,
        path: &str,
    ) -> Result<Vec<Layer>, TaskYamlError> {
        let Value::Sequence(items) = list else {
            return Err(err(
                path,
                format!("expected a list of resource mappings, got {}", show(list)),
            ));
        };
        if items.is_empty() {
            return Err(err(path, "the list is empty"));
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let m = self.mapping(item, &ip)?;
            let mut layer = base.clone();
            // A candidate that sets its own location replaces the outer location as a whole.
            let sets_location = m
                .keys()
                .any(|k| matches!(k.as_str(), Some("infra" | "cloud" | "region" | "zone")));
            if sets_location {
                layer.provider = None;
                layer.region = None;
                layer.zone = None;
            }
            for (k, val) in self.entries(m, &ip)? {
                if matches!(k, "any_of" | "ordered") {
                    return Err(err(&join(&ip, k), "cannot be nested"));
                }
                self.field(&mut layer, k, val, &ip)?;
            }
            self.check_infra_conflicts(m, &ip)?;
            out.push(layer);
        }
        Ok(out)
    }

    fn check_infra_conflicts(&self, m: &Mapping, path: &str) -> Result<(), TaskYamlError> {
        let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
        if has("infra") {
            for k in ["cloud", "region", "zone"] {
                if has(k) {
                    return Err(err(path, format!("use either infra or {k}, not both")));
                }
            }
        }
        Ok(())
    }

    fn field(
        &mut self,
        l: &mut Layer,
        k: &str,
        v: &Value,
        path: &str,
    ) -> Result<(), TaskYamlError> {
        let p = join(path, k);
        if v.is_null() {
            return Ok(()); // `field:` with no value means "any", as in SkyPilot.
        }
        match k {
            "accelerators" => l.accelerators = Some(accelerators(v, &p)?),
            "cloud" => l.provider = Some(self.cloud(&string(v, &p)?, &p)?),
            "region" => l.region = Some(RegionId::new(name(v, &p)?)),
            "zone" => l.zone = Some(ZoneId::new(name(v, &p)?)),
            "infra" => {
                let s = string(v, &p)?;
                let parts: Vec<&str> = s.trim().split('/').collect();
                if parts.len() > 3 || parts.iter().any(|x| x.trim().is_empty()) {
                    return Err(err(
                        &p,
                        format!("expected CLOUD[/REGION[/ZONE]] (use * for any), got {s:?}"),
                    ));
                }
                let part = |i: usize| parts.get(i).map(|x| x.trim()).filter(|x| *x != "*");
                l.provider = part(0).map(|c| self.cloud(c, &p)).transpose()?;
                l.region = part(1).map(RegionId::new);
                l.zone = part(2).map(ZoneId::new);
            }
            "use_spot" => {
                l.spot = Some(if boolean(v, &p)? {
                    SpotPref::Required
                } else {
                    SpotPref::Never
                })
            }
            "cpus" => l.cpus = Some(bound(v, &p, "", 1000.0)?.map(|x| x as u32)),
            "memory" => l.memory = Some(bound(v, &p, "GB", 1024.0)?),
            "instance_type" => l.instance_type = Some(name(v, &p)?),
            k if RES_KNOWN_IGNORED.contains(&k) => {}
            _ => self.warn(p, "unknown field, ignored"),
        }
        Ok(())
    }

    fn cloud(&mut self, s: &str, path: &str) -> Result<ProviderId, TaskYamlError> {
        let id = ProviderId::parse(s);
        let c = id.as_str();
        if c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'))
        {
            return Err(err(
                path,
                format!("cloud name must be letters, digits, '-' or '_', got {s:?}"),
            ));
        }
        if let Some((_, canon)) = CLOUD_ALIASES.iter().find(|(a, _)| *a == c) {
            return Ok(ProviderId::new(*canon));
        }
        if !SKYPILOT_CLOUDS.contains(&c) {
            self.warn(
                path.to_owned(),
                format!("{c:?} is not a SkyPilot cloud name; treated as a local provider"),
            );
        }
        Ok(id)
    }
}

fn string(v: &Value, path: &str) -> Result<String, TaskYamlError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(err(path, format!("expected text, got {}", show(other)))),
    }
}

fn opt_string(v: &Value, path: &str) -> Result<Option<String>, TaskYamlError> {
    if v.is_null() {
        return Ok(None);
    }
    string(v, path).map(Some)
}

/// A name (region, zone, instance type): non-empty text without spaces.
fn name(v: &Value, path: &str) -> Result<String, TaskYamlError> {
    let s = string(v, path)?;
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return Err(err(
            path,
            format!("expected a name without spaces, got {s:?}"),
        ));
    }
    Ok(t.to_owned())
}

fn boolean(v: &Value, path: &str) -> Result<bool, TaskYamlError> {
    match v {
        Value::Bool(b) => Ok(*b),
        // YAML 1.1 spellings, which SkyPilot (PyYAML) reads as booleans.
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            _ => Err(err(
                path,
                format!("expected true or false, got {}", show(v)),
            )),
        },
        other => Err(err(
            path,
            format!("expected true or false, got {}", show(other)),
        )),
    }
}

fn positive_u32(v: &Value, path: &str) -> Result<u32, TaskYamlError> {
    let bad = || {
        err(
            path,
            format!("must be a positive whole number, got {}", show(v)),
        )
    };
    let n = match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u
            } else {
                let f = n.as_f64().ok_or_else(bad)?;
                if !(f.is_finite() && f.fract() == 0.0 && f >= 0.0 && f <= u32::MAX as f64) {
                    return Err(bad());
                }
                f as u64
            }
        }
        Value::String(s) => s.trim().parse::<u64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if n == 0 || n > u32::MAX as u64 {
        return Err(bad());
    }
    Ok(n as u32)
}

/// `4`, `4+`, `"4.5+"`, `32GB+`: a non-negative amount scaled by `scale` and rounded, exactly or at least.
fn bound(v: &Value, path: &str, unit: &str, scale: f64) -> Result<Bound<u64>, TaskYamlError> {
    let bad = || {
        err(
            path,
            format!(
                "expected a number optionally followed by '+' (e.g. 8 or 8+), got {}",
                show(v)
            ),
        )
    };
    let (num, plus) = match v {
        Value::Number(n) => (n.as_f64().ok_or_else(bad)?, false),
        Value::String(s) => {
            let mut t = s.trim();
            let plus = t.ends_with('+');
            if plus {
                t = t[..t.len() - 1].trim_end();
            }
            if !unit.is_empty() {
                for suffix in [unit, "GiB", "G"] {
                    if let Some(rest) = t.strip_suffix(suffix) {
                        t = rest.trim_end();
                        break;
                    }
                }
            }
            (t.parse::<f64>().map_err(|_| bad())?, plus)
        }
        _ => return Err(bad()),
    };
    let scaled = (num * scale).round();
    if !(num.is_finite() && num >= 0.0 && scaled <= u32::MAX as f64) {
        return Err(err(
            path,
            format!(
                "must be between 0 and {}, got {}",
                (u32::MAX as f64 / scale).floor(),
                show(v)
            ),
        ));
    }
    let x = scaled as u64;
    Ok(if plus {
        Bound::AtLeast(x)
    } else {
        Bound::Exactly(x)
    })
}

trait BoundMap<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> Bound<U>;
}
impl<T> BoundMap<T> for Bound<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> Bound<U> {
        match self {
            Bound::Exactly(x) => Bound::Exactly(f(x)),
            Bound::AtLeast(x) => Bound::AtLeast(f(x)),
        }
    }
}

fn accel_str(s: &str, path: &str) -> Result<AccelRequest, TaskYamlError> {
    let (n, c) = match s.rsplit_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let name = accel_name(n, path)?;
    let count = match c {
        None => 1,
        Some(c) => count_str(c.trim(), path)?,
    };
    Ok(AccelRequest::new(name, count))
}

fn accel_name(n: &str, path: &str) -> Result<Accelerator, TaskYamlError> {
    Accelerator::parse(n).map_err(|e| err(path, e.to_string()))
}

fn count_str(c: &str, path: &str) -> Result<u32, TaskYamlError> {
    let bad = || {
        err(
            path,
            format!("count must be a positive whole number, got {c}"),
        )
    };
    let f: f64 = c.parse().map_err(|_| bad())?;
    if !(f.is_finite() && f.fract() == 0.0 && f >= 1.0 && f <= u32::MAX as f64) {
        return Err(bad());
    }
    Ok(f as u32)
}

fn count_value(v: &Value, path: &str) -> Result<u32, TaskYamlError> {
    match v {
        Value::Null => Ok(1),
        Value::Number(n) => count_str(&n.to_string(), path),
        Value::String(s) => count_str(s.trim(), path),
        other => Err(err(
            path,
            format!("count must be a positive whole number, got {}", show(other)),
        )),
    }
}

/// One entry of a mapping form: `H100: 8`, or `H100:8:` (a set member, value null).
fn accel_entry(k: &Value, v: &Value, path: &str) -> Result<AccelRequest, TaskYamlError> {
    let key = match k {
        Value::String(s) => s.as_str(),
        other => {
            return Err(err(
                path,
                format!("expected an accelerator name, got {}", show(other)),
            ))
        }
    };
    if v.is_null() {
        accel_str(key, path)
    } else {
        Ok(AccelRequest::new(
            accel_name(key, path)?,
            count_value(v, path)?,
        ))
    }
}

fn accelerators(v: &Value, path: &str) -> Result<Accels, TaskYamlError> {
    match v {
        Value::String(s) => Ok(Accels::One(accel_str(s, path)?)),
        Value::Mapping(m) => {
            if m.is_empty() {
                return Err(err(path, "the mapping is empty"));
            }
            let mut all = Vec::new();
            for (k, val) in m {
                let a = accel_entry(k, val, path)?;
                if !all.contains(&a) {
                    all.push(a);
                }
            }
            Ok(if all.len() == 1 {
                Accels::One(all.remove(0))
            } else {
                Accels::AnyOf(all)
            })
        }
        Value::Sequence(items) => {
            if items.is_empty() {
                return Err(err(path, "the list is empty"));
            }
            let mut all = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{path}[{i}]");
                let a = match item {
                    Value::String(s) => accel_str(s, &ip)?,
                    Value::Mapping(m) if m.len() == 1 => {
                        let (k, val) = m.iter().next().ok_or_else(|| err(&ip, "empty"))?;
                        accel_entry(k, val, &ip)?
                    }
                    other => {
                        return Err(err(
                            &ip,
                            format!("expected NAME:COUNT, got {}", show(other)),
                        ))
                    }
                };
                if !all.contains(&a) {
                    all.push(a);
                }
            }
            Ok(if all.len() == 1 {
                Accels::One(all.remove(0))
            } else {
                Accels::Ordered(all)
            })
        }
        other => Err(err(
            path,
            format!(
                "expected NAME:COUNT, a mapping or a list, got {}",
                show(other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(y: &str) -> ParsedTask {
        parse(y).unwrap_or_else(|e| panic!("{y}\n{e}"))
    }
    fn fail(y: &str) -> String {
        parse(y).expect_err(y).to_string()
    }
    fn accels(t: &TaskSpec) -> Vec<String> {
        t.resources
            .iter()
            .map(|r| {
                r.accelerators
                    .as_ref()
                    .map_or("-".into(), |a| a.to_string())
            })
            .collect()
    }

    #[test]
    fn accelerator_forms() {
        for (y, want, pref) in [
            (
                "resources: {accelerators: H100:8}",
                vec!["H100:8"],
                Preference::Cheapest,
            ),
            (
                "resources: {accelerators: {H100: 8}}",
                vec!["H100:8"],
                Preference::Cheapest,
            ),
            (
                "resources: {accelerators: h100-sxm}",
                vec!["H100:1"],
                Preference::Cheapest,
            ),
            (
                "resources: {accelerators: [H100:8, A100:8]}",
                vec!["H100:8", "A100:8"],
                Preference::Ordered,
            ),
            (
                "resources: {accelerators: {H100:8, A100-80GB:8}}",
                vec!["H100:8", "A100-80GB:8"],
                Preference::Cheapest,
            ),
            (
                "resources: {accelerators: {H100: 8, A100: 8}}",
                vec!["H100:8", "A100:8"],
                Preference::Cheapest,
            ),
            (
                "resources: {accelerators: [{H100: 8}, L4:1.0]}",
                vec!["H100:8", "L4:1"],
                Preference::Ordered,
            ),
        ] {
            let t = ok(y).task;
            assert_eq!(accels(&t), want, "{y}");
            assert_eq!(t.preference, pref, "{y}");
        }
    }

    #[test]
    fn any_of_and_ordered_override_the_outer_fields() {
        let t = ok("
resources:
  accelerators: H100:8
  use_spot: true
  cloud: aws
  any_of:
    - infra: gcp/us-central1
    - accelerators: A100:8
      use_spot: false
")
        .task;
        assert_eq!(t.preference, Preference::Cheapest);
        assert_eq!(t.resources.len(), 2);
        let (a, b) = (&t.resources[0], &t.resources[1]);
        assert_eq!(
            (
                a.provider.as_ref().unwrap().as_str(),
                a.region.as_ref().unwrap().as_str()
            ),
            ("gcp", "us-central1")
        );
        assert_eq!((a.spot, b.spot), (SpotPref::Required, SpotPref::Never));
        assert_eq!(b.provider.as_ref().unwrap().as_str(), "aws");
        assert_eq!(accels(&t), ["H100:8", "A100:8"]);
        let t =
            ok("resources: {ordered: [{cloud: lambda}, {cloud: aws}], accelerators: H100:8}").task;
        assert_eq!(t.preference, Preference::Ordered);
        assert_eq!(t.resources[1].provider.as_ref().unwrap().as_str(), "aws");
    }

    #[test]
    fn location_cpus_memory() {
        let t = ok("
name: train
num_nodes: 2
run: python train.py
resources:
  infra: AWS/us-east-1/use1-az1
  cpus: 8+
  memory: 64GB+
  instance_type: p5.48xlarge
")
        .task;
        let r = &t.resources[0];
        assert_eq!(
            (t.name.as_deref(), t.num_nodes, t.run.as_deref()),
            (Some("train"), 2, Some("python train.py"))
        );
        assert_eq!(r.provider.as_ref().unwrap().as_str(), "aws");
        assert_eq!(r.zone.as_ref().unwrap().as_str(), "use1-az1");
        assert_eq!(r.cpus_milli, Some(Bound::AtLeast(8000)));
        assert_eq!(r.memory_mib, Some(Bound::AtLeast(65536)));
        assert_eq!(r.instance_type.as_deref(), Some("p5.48xlarge"));
        let r = &ok("resources: {infra: '*/us-east-1', cpus: 4, memory: 16.5}")
            .task
            .resources[0];
        assert_eq!(
            (r.provider.clone(), r.region.as_ref().unwrap().as_str()),
            (None, "us-east-1")
        );
        assert_eq!(
            (r.cpus_milli, r.memory_mib),
            (Some(Bound::Exactly(4000)), Some(Bound::Exactly(16896)))
        );
        assert_eq!(
            ok("resources: {cloud: k8s}").task.resources[0]
                .provider
                .as_ref()
                .unwrap()
                .as_str(),
            "kubernetes"
        );
    }

    #[test]
    fn unknown_fields_and_clouds_warn() {
        let p = ok("
nme: typo
envs: {A: 1}
setup: pip install x
resources: {accelerator: H100, cloud: mycluster, disk_size: 100}
");
        let w: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w, [
            "nme: unknown field, ignored",
            "resources.accelerator: unknown field, ignored",
            "resources.cloud: \"mycluster\" is not a SkyPilot cloud name; treated as a local provider",
        ]);
        assert_eq!(ok("").task, TaskSpec::single(ResourceRequest::default()));
    }

    #[test]
    fn setup_envs_workdir_and_file_mounts_are_kept() {
        let t = ok("
setup: pip install -r requirements.txt
run: python train.py
workdir: ./src
envs: {LR: 0.001, EPOCHS: 3, DEBUG: true, NAME: run-a}
file_mounts: {data/train: /srv/datasets/train}
")
        .task;
        assert_eq!(t.setup.as_deref(), Some("pip install -r requirements.txt"));
        assert_eq!(t.workdir.as_deref(), Some("./src"));
        let envs: Vec<(&str, &str)> = t
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            envs,
            [
                ("DEBUG", "true"),
                ("EPOCHS", "3"),
                ("LR", "0.001"),
                ("NAME", "run-a")
            ]
        );
        assert_eq!(
            t.file_mounts.get("data/train").map(String::as_str),
            Some("/srv/datasets/train")
        );
        for (y, want) in [
            ("envs: {1X: a}", "envs.1X: a variable name is letters, digits and '_', not starting with a digit"),
            ("envs: {HEDGE_JOB_ID: 3}", "envs.HEDGE_JOB_ID: HEDGE_* names are reserved for the variables Hedge sets"),
            ("envs: {A: [1]}", "envs.A: expected a text, number or boolean value, got a list"),
            ("envs: [A]", "envs: expected a mapping, got a list"),
            ("file_mounts: {/data: s3://bucket/x}", "file_mounts./data: \"s3://bucket/x\" is cloud storage; only local paths can be mounted"),
            ("file_mounts: {/data: {source: s3://b}}", "file_mounts./data: expected a local source path, got a mapping"),
        ] {
            assert_eq!(parse(y).unwrap_err().to_string(), want, "{y}");
        }
    }

    #[test]
    fn wrong_values_name_the_field() {
        for (y, want) in [
            ("resources: {accelerators: H100:0}", "resources.accelerators: count must be a positive whole number, got 0"),
            ("resources: {accelerators: H100:0.5}", "resources.accelerators: count must be a positive whole number, got 0.5"),
            ("resources: {accelerators: {H100: -1}}", "resources.accelerators: count must be a positive whole number, got -1"),
            ("resources: {accelerators: [H100:8, 3]}", "resources.accelerators[1]: expected NAME:COUNT, got 3"),
            ("resources: {accelerators: 'H 100'}", "resources.accelerators: accelerator name \"H 100\" has characters other than letters, digits, '-', '_' and '.'"),
            ("num_nodes: 0", "num_nodes: must be a positive whole number, got 0"),
            ("num_nodes: two", "num_nodes: must be a positive whole number, got \"two\""),
            ("resources: {use_spot: maybe}", "resources.use_spot: expected true or false, got \"maybe\""),
            ("resources: {cpus: lots}", "resources.cpus: expected a number optionally followed by '+' (e.g. 8 or 8+), got \"lots\""),
            ("resources: {cpus: -2}", "resources.cpus: must be between 0 and 4294967, got -2"),
            ("resources: {infra: aws/a/b/c}", "resources.infra: expected CLOUD[/REGION[/ZONE]] (use * for any), got \"aws/a/b/c\""),
            ("resources: {infra: aws, region: x}", "resources: use either infra or region, not both"),
            ("resources: {any_of: [{cloud: aws}], ordered: [{cloud: gcp}]}", "resources: use either any_of or ordered, not both"),
            ("resources: {any_of: []}", "resources.any_of: the list is empty"),
            ("resources: {any_of: [{any_of: []}]}", "resources.any_of[0].any_of: cannot be nested"),
            ("resources: {accelerators: [A100:8, H100:8], any_of: [{cloud: aws}, {cloud: gcp}]}", "resources: cannot mix ordered alternatives (ordered, or a list of accelerators) with any-of alternatives (any_of, or a set of accelerators)"),
            ("resources: [H100]", "resources: expected a mapping, got a list"),
            ("- 1", "task: expected a mapping, got a list"),
            ("resources: {region: us east}", "resources.region: expected a name without spaces, got \"us east\""),
        ] {
            assert_eq!(fail(y), want, "{y}");
        }
        let e = parse("resources:\n  accelerators: [\n").unwrap_err();
        assert!(
            matches!(e, TaskYamlError::Syntax { line: Some(3), .. }),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("invalid YAML: "), "{e}");
        assert!(fail("a: 1\n---\nb: 2\n").starts_with("invalid YAML"));
        // Hostile input: deep nesting and alias bombs are errors, not stack overflows or memory blow-ups.
        assert_eq!(
            fail(&"[".repeat(100_000)),
            "invalid YAML: more than 256 nested [ or { by line 1"
        );
        assert!(
            fail(&"[".repeat(200)).starts_with("invalid YAML: recursion limit exceeded"),
            "{}",
            fail(&"[".repeat(200))
        );
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            bomb += &format!(
                "{}: &{} [*{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}]\n",
                (b'b' + i) as char,
                (b'b' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i) as char
            );
        }
        let e = fail(&bomb);
        assert!(e.starts_with("invalid YAML"), "{e}");
    }
}
