use crate::{hedge, render};
use expect_test::expect;

#[test]
fn version_json() {
    let o = hedge(&["version", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hedge"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let o = hedge(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", render(&o));
    expect![[r#"
        exit: 2
        --- stdout
        --- stderr
        error: unrecognized subcommand 'frobnicate'

          tip: a similar subcommand exists: 'forecast'

        Usage: hedge <COMMAND>

        For more information, try '--help'.
    "#]]
    .assert_eq(&render(&o));
}
