use crate::{key, local, spec, wait_terminal};
use hedge_drivers::{Driver, DriverError, Observation};
use std::time::Duration;

#[tokio::test]
async fn runs_command_with_hedge_env_and_captures_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 4);
    let mut s = spec(7, "echo job=$HEDGE_JOB_ID provider=$HEDGE_PROVIDER gpus=$HEDGE_NUM_GPUS accel=$HEDGE_ACCELERATOR team=$HEDGE_TEAM; echo oops >&2; exit 3");
    s.gpus_per_node = 2;
    assert_eq!(d.submit(&key(7), &s).await.unwrap(), Observation::Queued);
    assert_eq!(
        wait_terminal(&d, &key(7)).await,
        Observation::Exited { code: 3 }
    );
    let logs = d.logs(&key(7), 1 << 20).await.unwrap();
    assert_eq!(
        logs.stdout,
        "job=7 provider=local-a gpus=2 accel=H100 team=ml\n"
    );
    assert_eq!(logs.stderr, "oops\n");
    assert!(!logs.truncated);
    let tail = d.logs(&key(7), 4).await.unwrap();
    assert_eq!(tail.stdout, "=ml\n");
    assert!(tail.truncated);
}

#[tokio::test]
async fn same_key_never_starts_twice_even_concurrently() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 1);
    let s = spec(1, "sleep 0.2");
    let results = futures_join(&d, &s).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        wait_terminal(&d, &key(1)).await,
        Observation::Exited { code: 0 }
    );
    // A submit after the end reports the end and starts nothing.
    assert_eq!(
        d.submit(&key(1), &s).await.unwrap(),
        Observation::Exited { code: 0 }
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let starts = d.starts().unwrap();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(
        (starts[0].job, starts[0].attempt, starts[0].key.as_str()),
        (1, 1, "j1-a1")
    );
}

async fn futures_join(
    d: &hedge_drivers::LocalDriver,
    s: &hedge_drivers::LaunchSpec,
) -> Vec<Result<Observation, DriverError>> {
    let k = key(1);
    let (a, b, c, e) = tokio::join!(
        d.submit(&k, s),
        d.submit(&k, s),
        d.submit(&k, s),
        d.submit(&k, s)
    );
    vec![a, b, c, e]
}

#[tokio::test]
async fn a_new_driver_instance_reobserves_running_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let d = local(tmp.path(), "local-a", 1);
        d.submit(&key(2), &spec(2, "sleep 0.5; echo done"))
            .await
            .unwrap();
        for _ in 0..100 {
            if d.observe(&key(2)).await.unwrap() == Observation::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // As after a broker restart: a fresh driver over the same directory.
    let d = local(tmp.path(), "local-a", 1);
    assert_eq!(d.observe(&key(2)).await.unwrap(), Observation::Running);
    assert_eq!(
        wait_terminal(&d, &key(2)).await,
        Observation::Exited { code: 0 }
    );
    assert_eq!(d.logs(&key(2), 100).await.unwrap().stdout, "done\n");
    assert_eq!(d.keys().unwrap().len(), 1);
}

#[tokio::test]
async fn cancel_stops_the_process_group_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 1);
    d.submit(&key(3), &spec(3, "sleep 30 & wait"))
        .await
        .unwrap();
    for _ in 0..100 {
        if d.observe(&key(3)).await.unwrap() == Observation::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = d.cancel(&key(3)).await.unwrap();
    let o = wait_terminal(&d, &key(3)).await;
    let files: Vec<_> = std::fs::read_dir(tmp.path().join("local-a/attempts/j3-a1"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(o, Observation::Cancelled, "{c:?} {files:?}");
    assert_eq!(d.cancel(&key(3)).await.unwrap(), Observation::Cancelled);
    // The backgrounded sleep went with its group.
    let out = std::process::Command::new("pgrep")
        .args(["-f", "sleep 30"])
        .output();
    if let Ok(out) = out {
        let pids = String::from_utf8_lossy(&out.stdout).to_string();
        let ours = tmp.path().display().to_string();
        for pid in pids.lines() {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/environ")).unwrap_or_default();
            assert!(!cmd.contains(&ours), "sleep {pid} survived the cancel");
        }
    }
}

#[tokio::test]
async fn unknown_keys_and_bad_specs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 2);
    assert_eq!(d.observe(&key(9)).await.unwrap(), Observation::NotFound);
    assert_eq!(d.cancel(&key(9)).await.unwrap(), Observation::NotFound);
    assert!(matches!(
        d.logs(&key(9), 10).await,
        Err(DriverError::NotFound { .. })
    ));
    let mut s = spec(9, "true");
    s.gpus_per_node = 3;
    let e = d.submit(&key(9), &s).await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "provider local-a rejected the launch of j9-a1: asks for 3 GPUs, the provider has 2"
    );
    let e = d.submit(&key(9), &spec(9, "  ")).await.unwrap_err();
    assert!(matches!(e, DriverError::Unsupported { .. }), "{e}");
    assert_eq!(
        d.observe(&key(9)).await.unwrap(),
        Observation::NotFound,
        "a rejected submit leaves nothing behind"
    );
}

#[tokio::test]
async fn killed_wrapper_is_reported_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 1);
    d.submit(&key(4), &spec(4, "sleep 30")).await.unwrap();
    let pid_file = tmp.path().join("local-a/attempts/j4-a1/pid");
    let mut pid = None;
    for _ in 0..200 {
        if let Ok(p) = std::fs::read_to_string(&pid_file) {
            pid = Some(p.trim().parse::<i32>().unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = pid.expect("wrapper wrote its pid");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = wait_terminal(&d, &key(4)).await;
    assert!(matches!(o, Observation::Lost { .. }), "{o:?}");
}

fn local_with_grace(root: &std::path::Path, grace: Duration) -> hedge_drivers::LocalDriver {
    hedge_drivers::LocalDriver::new(hedge_drivers::LocalProviderConfig {
        name: hedge_core::ProviderId::parse("local-a"),
        gpus: 1,
        accelerator: Some(hedge_core::Accelerator::parse("H100").unwrap()),
        root: root.to_owned(),
        cancel_grace: grace,
    })
    .unwrap()
}

async fn wait_running(
    d: &dyn hedge_drivers::Driver,
    k: &hedge_drivers::IdempotencyKey,
    marker: &std::path::Path,
) {
    for _ in 0..500 {
        if d.observe(k).await.unwrap() == Observation::Running && marker.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{k} never ran (no {})", marker.display());
}

/// Live processes whose environment names this attempt directory.
fn live_processes_of(dir: &std::path::Path) -> Vec<u32> {
    let needle = format!("HEDGE_ATTEMPT_DIR={}", dir.display());
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|c| c == 'Z');
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if !zombie
            && String::from_utf8_lossy(&env)
                .split('\0')
                .any(|v| v == needle)
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn a_command_that_traps_sigterm_is_reported_running_until_sigkill_after_the_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local_with_grace(tmp.path(), Duration::from_millis(1500));
    let dir = tmp.path().join("local-a/attempts/j5-a1");
    let script = "trap 'echo got-term' TERM; touch started; while :; do sleep 0.05; done";
    d.submit(&key(5), &spec(5, script)).await.unwrap();
    wait_running(&d, &key(5), &dir.join("work/started")).await;
    // First cancel: SIGTERM to the group. The command ignores it (prints and goes on).
    assert_eq!(d.cancel(&key(5)).await.unwrap(), Observation::Running);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        d.observe(&key(5)).await.unwrap(),
        Observation::Running,
        "still alive: not cancelled yet"
    );
    assert_eq!(
        d.cancel(&key(5)).await.unwrap(),
        Observation::Running,
        "within the grace: no SIGKILL yet"
    );
    assert!(
        !live_processes_of(&dir).is_empty(),
        "the trapping command is alive within the grace"
    );
    assert_eq!(
        d.logs(&key(5), 1000).await.unwrap().stdout.lines().next(),
        Some("got-term"),
        "the command got SIGTERM"
    );
    // After the grace: SIGKILL to the group, then the confirmation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut last = Observation::Running;
    for _ in 0..200 {
        last = d.cancel(&key(5)).await.unwrap();
        if last.is_terminal() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last, Observation::Cancelled);
    assert_eq!(
        live_processes_of(&dir),
        Vec::<u32>::new(),
        "Cancelled is reported only once no process is left"
    );
}

#[tokio::test]
async fn a_command_outliving_its_killed_wrapper_is_running_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local_with_grace(tmp.path(), Duration::from_secs(30));
    let dir = tmp.path().join("local-a/attempts/j6-a1");
    d.submit(&key(6), &spec(6, "touch started; sleep 30"))
        .await
        .unwrap();
    wait_running(&d, &key(6), &dir.join("work/started")).await;
    let pid: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Kill only the wrapper: its command goes on in the process group.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        d.observe(&key(6)).await.unwrap(),
        Observation::Running,
        "the work is alive"
    );
    // A cancel still reaches it through the group.
    let mut last = Observation::Running;
    for _ in 0..300 {
        last = d.cancel(&key(6)).await.unwrap();
        if last.is_terminal() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last, Observation::Cancelled);
    assert!(live_processes_of(&dir).is_empty());
}

#[tokio::test]
async fn an_io_error_reading_an_attempt_is_an_error_not_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local_with_grace(tmp.path(), Duration::from_secs(30));
    d.submit(&key(7), &spec(7, "true")).await.unwrap();
    let o = wait_terminal(&d, &key(7)).await;
    assert_eq!(o, Observation::Exited { code: 0 });
    // The exit status file becomes unreadable (a directory in its place: EISDIR for every reader, root too).
    let exit = tmp.path().join("local-a/attempts/j7-a1/exit");
    std::fs::remove_file(&exit).unwrap();
    std::fs::create_dir(&exit).unwrap();
    let e = d.observe(&key(7)).await.unwrap_err();
    assert!(matches!(e, DriverError::Io { .. }), "{e}");
    assert!(
        e.to_string().contains("exit"),
        "the error names the file: {e}"
    );
}

#[tokio::test]
async fn setup_envs_workdir_and_file_mounts_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let d = local(tmp.path(), "local-a", 1);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("train.py"), "print('hi')\n").unwrap();
    let data = tmp.path().join("dataset.txt");
    std::fs::write(&data, "rows\n").unwrap();
    let mut s = spec(
        20,
        "cat train.py; cat data/train.txt; cat setup.out; echo lr=$LR",
    );
    s.setup = Some("echo set-up > setup.out".into());
    s.env.insert("LR".into(), "0.001".into());
    s.workdir = Some(src.display().to_string());
    s.file_mounts
        .insert("data/train.txt".into(), data.display().to_string());
    d.submit(&key(20), &s).await.unwrap();
    assert_eq!(
        wait_terminal(&d, &key(20)).await,
        Observation::Exited { code: 0 }
    );
    assert_eq!(
        d.logs(&key(20), 1000).await.unwrap().stdout,
        "print('hi')\nrows\nset-up\nlr=0.001\n"
    );
    assert!(
        !src.join("setup.out").exists(),
        "the workdir is copied, the user's directory untouched"
    );
    // A failing setup fails the attempt without running `run`.
    let mut s = spec(21, "echo ran");
    s.setup = Some("exit 4".into());
    d.submit(&key(21), &s).await.unwrap();
    assert_eq!(
        wait_terminal(&d, &key(21)).await,
        Observation::Exited { code: 4 }
    );
    assert_eq!(d.logs(&key(21), 1000).await.unwrap().stdout, "");
    // What the local driver cannot do is refused, naming the field.
    let mut s = spec(22, "true");
    s.file_mounts
        .insert("/data".into(), data.display().to_string());
    let e = d.submit(&key(22), &s).await.unwrap_err();
    assert!(
        matches!(e, DriverError::Unsupported { .. }) && e.to_string().contains("file_mounts./data"),
        "{e}"
    );
    let mut s = spec(23, "true");
    s.workdir = Some("relative/dir".into());
    assert!(d
        .submit(&key(23), &s)
        .await
        .unwrap_err()
        .to_string()
        .contains("workdir"));
}
