//! Integration tests of hedge-drivers: the local driver against real processes, and the fault wrapper
//! around it.

mod ec2;
mod fault;
mod local;
mod slurm;

use hedge_core::{Accelerator, JobId, ProviderId, TeamId};
use hedge_drivers::{
    Driver, IdempotencyKey, LaunchSpec, LocalDriver, LocalProviderConfig, Observation,
};
use std::time::Duration;

pub fn local(root: &std::path::Path, name: &str, gpus: u32) -> LocalDriver {
    LocalDriver::new(LocalProviderConfig {
        name: ProviderId::parse(name),
        gpus,
        accelerator: Some(Accelerator::parse("H100").unwrap()),
        root: root.to_owned(),
        cancel_grace: hedge_drivers::DEFAULT_CANCEL_GRACE,
    })
    .unwrap()
}

pub fn spec(job: u64, run: &str) -> LaunchSpec {
    LaunchSpec {
        job: JobId(job),
        attempt: 1,
        team: TeamId::new("ml"),
        name: Some(format!("job-{job}")),
        setup: None,
        run: run.to_owned(),
        time_limit_minutes: None,
        accelerator: Some(Accelerator::parse("H100").unwrap()),
        gpus_per_node: 1,
        num_nodes: 1,
        env: Default::default(),
        workdir: None,
        file_mounts: Default::default(),
        instance_type: None,
        zone: None,
        spot: false,
        commitment: None,
        capacity_reservation: None,
    }
}

pub fn key(job: u64) -> IdempotencyKey {
    IdempotencyKey::for_attempt(JobId(job), 1)
}

/// Polls `observe` until the attempt is terminal (10 s at most).
pub async fn wait_terminal(d: &dyn Driver, k: &IdempotencyKey) -> Observation {
    for _ in 0..500 {
        let o = d.observe(k).await.unwrap();
        if o.is_terminal() {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("attempt {k} did not finish within 10 s");
}
