//! Task fields reach the process: `setup` runs before `run`, `envs` are in its environment, through the
//! real API, store, reconciler and local driver.

use crate::{backends, state, TestServer};

backends!(setup_and_envs_reach_the_process, |backend| async move {
    let s = TestServer::start(backend).await;
    let ml = s.token_for("ml").await;
    let yaml = "name: fields\nresources: {accelerators: H100:1}\nsetup: echo prepared > marker\n\
                envs: {GREETING: hello, EPOCHS: 3}\nrun: cat marker; echo $GREETING $EPOCHS\n";
    let id = s.submit(&ml, yaml).await["id"].as_u64().unwrap();
    s.wait_job(id, 20, |j| state(j) == "succeeded").await;
    let (_, logs) = s
        .call("GET", &format!("/v1/jobs/{id}/logs"), &ml, None)
        .await;
    assert_eq!(logs["stdout"], "prepared\nhello 3\n", "{logs}");
    // A failing setup fails the job without running `run`.
    let yaml =
        "name: bad-setup\nresources: {accelerators: H100:1}\nsetup: exit 5\nrun: echo never\n";
    let id = s.submit(&ml, yaml).await["id"].as_u64().unwrap();
    let j = s.wait_job(id, 20, |j| state(j) == "failed").await;
    let ev = s.events(id).await;
    assert_eq!(ev.last().unwrap()["explanation"]["exit_code"], 5, "{j:#}");
});
