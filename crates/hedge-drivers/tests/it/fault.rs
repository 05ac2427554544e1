use crate::{key, local, spec, wait_terminal};
use hedge_drivers::{Driver, DriverError, FaultSettings, FaultyDriver, Observation};

#[tokio::test]
async fn unreachable_fails_every_call_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, ctl) = FaultyDriver::new(local(tmp.path(), "local-b", 1));
    d.probe().await.unwrap();
    ctl.set_unreachable(true);
    assert!(matches!(
        d.probe().await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.submit(&key(1), &spec(1, "true")).await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.observe(&key(1)).await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.cancel(&key(1)).await,
        Err(DriverError::Unreachable { .. })
    ));
    assert_eq!(
        d.inner().observe(&key(1)).await.unwrap(),
        Observation::NotFound,
        "nothing reached the provider"
    );
    ctl.set_unreachable(false);
    d.submit(&key(1), &spec(1, "true")).await.unwrap();
    assert_eq!(
        wait_terminal(&d, &key(1)).await,
        Observation::Exited { code: 0 }
    );
    assert_eq!(ctl.injected(), 4);
}

#[tokio::test]
async fn failed_submits_then_success() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, ctl) = FaultyDriver::new(local(tmp.path(), "local-b", 1));
    ctl.set(FaultSettings {
        fail_submits: 2,
        ..Default::default()
    });
    for _ in 0..2 {
        assert!(matches!(
            d.submit(&key(1), &spec(1, "true")).await,
            Err(DriverError::Rejected { .. })
        ));
    }
    d.submit(&key(1), &spec(1, "true")).await.unwrap();
    assert_eq!(
        wait_terminal(&d, &key(1)).await,
        Observation::Exited { code: 0 }
    );
    assert_eq!(d.inner().starts().unwrap().len(), 1);
}

#[tokio::test]
async fn lost_attempts_stay_lost_and_their_process_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, ctl) = FaultyDriver::new(local(tmp.path(), "local-b", 1));
    d.submit(&key(1), &spec(1, "sleep 30")).await.unwrap();
    ctl.set(FaultSettings {
        lose_next: 1,
        ..Default::default()
    });
    assert!(matches!(
        d.observe(&key(1)).await.unwrap(),
        Observation::Lost { .. }
    ));
    assert!(matches!(
        d.observe(&key(1)).await.unwrap(),
        Observation::Lost { .. }
    ));
    assert!(matches!(
        d.submit(&key(1), &spec(1, "sleep 30")).await.unwrap(),
        Observation::Lost { .. }
    ));
    assert_eq!(
        wait_terminal(d.inner(), &key(1)).await,
        Observation::Cancelled
    );
    assert_eq!(
        ctl.get(),
        FaultSettings::default(),
        "the one-shot fault was used up"
    );
}
