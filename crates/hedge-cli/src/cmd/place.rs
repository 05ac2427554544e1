//! `hedge place TASK.yaml`: where the task would run now, at what hourly cost, and why not elsewhere.

use super::Format;
use hedge_placement::{place, Candidate, Placement, PlacementContext, PlacementSettings};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A SkyPilot task YAML file.
    pub task: PathBuf,
    /// A SkyPilot v8 catalog directory or a native catalog file (default: the catalog shipped with hedge).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// How many alternatives to list besides the chosen placement (best per provider and market).
    #[arg(long, default_value_t = 8)]
    pub alternatives: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = super::read_task(&args.task)?;
    let loaded = super::load_catalog(args.catalog.as_deref())?;
    let settings = PlacementSettings {
        max_alternatives: args.alternatives,
        ..Default::default()
    };
    let placement = place(&task, &PlacementContext::new(&loaded.catalog), &settings);
    let mut out = super::stdout();
    match args.format {
        Format::Json => super::write_json(&mut out, &PlaceJson::new(&placement))?,
        Format::Table => write_table(&mut out, task.name.as_deref(), &placement)?,
    }
    out.flush()?;
    if !placement.is_placed() {
        anyhow::bail!(
            "{}: no feasible placement ({} rejections)",
            args.task.display(),
            placement.rejected.len()
        );
    }
    Ok(())
}

/// The JSON shape of `hedge place --format json` (stable: scripts and the benchmark read it).
#[derive(Serialize)]
struct PlaceJson<'a> {
    #[serde(flatten)]
    chosen: Option<CandidateJson<'a>>,
    alternatives: Vec<CandidateJson<'a>>,
    rejected: Vec<RejectedJson<'a>>,
}

#[derive(Serialize)]
struct CandidateJson<'a> {
    provider: &'a str,
    instance_type: &'a str,
    region: &'a str,
    zone: Option<&'a str>,
    market: String,
    accelerators: Option<&'a hedge_core::AccelRequest>,
    num_nodes: u32,
    hourly_cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment: Option<&'a str>,
}

#[derive(Serialize)]
struct RejectedJson<'a> {
    provider: &'a str,
    alternative: usize,
    reason: &'a str,
}

impl<'a> CandidateJson<'a> {
    fn new(c: &'a Candidate) -> Self {
        CandidateJson {
            provider: c.provider.as_str(),
            instance_type: &c.instance_type,
            region: c.location.region().as_str(),
            zone: c.location.zone().map(|z| z.as_str()),
            market: c.market.to_string(),
            accelerators: c.accelerators.as_ref(),
            num_nodes: c.num_nodes,
            hourly_cost_usd: c.hourly_cost.to_usd_per_hour_f64(),
            commitment: c.commitment.as_ref().map(|id| id.as_str()),
        }
    }
}

impl<'a> PlaceJson<'a> {
    fn new(p: &'a Placement) -> Self {
        PlaceJson {
            chosen: p.chosen.as_ref().map(CandidateJson::new),
            alternatives: p.alternatives.iter().map(CandidateJson::new).collect(),
            rejected: p
                .rejected
                .iter()
                .map(|r| RejectedJson {
                    provider: r.provider.as_str(),
                    alternative: r.alternative,
                    reason: &r.message,
                })
                .collect(),
        }
    }
}

fn write_table(out: &mut impl Write, name: Option<&str>, p: &Placement) -> anyhow::Result<()> {
    let name = name.unwrap_or("(unnamed)");
    match &p.chosen {
        Some(c) => writeln!(
            out,
            "task {name}: {} {} in {}, {}, {} node(s), {}",
            c.provider, c.instance_type, c.location, c.market, c.num_nodes, c.hourly_cost
        )?,
        None => writeln!(out, "task {name}: no feasible placement")?,
    }
    if p.is_placed() {
        let rows: Vec<[String; 8]> = p
            .chosen
            .iter()
            .chain(&p.alternatives)
            .enumerate()
            .map(|(i, c)| {
                [
                    (i + 1).to_string(),
                    c.provider.to_string(),
                    c.instance_type.clone(),
                    c.location.to_string(),
                    match &c.commitment {
                        Some(id) => format!("{} ({id})", c.market),
                        None => c.market.to_string(),
                    },
                    c.accelerators
                        .as_ref()
                        .map_or("-".to_owned(), ToString::to_string),
                    c.num_nodes.to_string(),
                    c.hourly_cost.hourly().to_string(),
                ]
            })
            .collect();
        writeln!(out)?;
        super::write_table(
            out,
            &[
                "RANK",
                "PROVIDER",
                "INSTANCE TYPE",
                "LOCATION",
                "MARKET",
                "ACCELERATORS",
                "NODES",
                "$/HOUR",
            ],
            &rows,
        )?;
    }
    if !p.rejected.is_empty() {
        writeln!(out, "\nrejected:")?;
        for r in &p.rejected {
            writeln!(out, "  {}", r.message)?;
        }
    }
    Ok(())
}
