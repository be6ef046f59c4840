//! The supervisor without namespaces (`SCF_LOCAL_NAMESPACES=off`: what a machine without root or user
//! namespaces gets): the instance's init is a subreaper that kills what the instance started, the instance
//! has a private directory with `tmp/`, and its environment is still built from nothing.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use scf_supervisor::{Network, Supervisor};

mod common;

/// One test, so that the variable is set before anything reads the environment.
#[tokio::test]
async fn without_namespaces_the_init_still_kills_everything_and_the_directory_is_private() {
    // SAFETY: set before any thread of this test binary reads the environment (this is its only test).
    unsafe { std::env::set_var("SCF_LOCAL_NAMESPACES", "off") };
    let sup = Supervisor::new(common::work_dir("fallback"), common::init()).unwrap();
    assert_eq!(
        sup.isolation().pid_mount,
        Err("SCF_LOCAL_NAMESPACES=off".to_owned())
    );
    assert!(
        sup.describe()[1].contains("PID and mount namespaces: off (SCF_LOCAL_NAMESPACES=off"),
        "{:?}",
        sup.describe()
    );

    let dir = sup.prepare("private", 64, Network::Shared).await.unwrap();
    let tmp = dir.tmp();
    assert!(tmp.is_dir() && tmp.ends_with("tmp"), "{}", tmp.display());
    let private = tmp.parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let p = sup
        .spawn(
            common::sh("echo $FROM_SPEC $TENCENTCLOUD_SECRETKEY.; exit 0"),
            dir,
        )
        .await
        .unwrap();
    p.exited().await;
    p.output().closed(Duration::from_secs(60)).await;
    assert_eq!(p.output().take_lines(true), ["yes ."]);
    p.stop().await;
    assert!(
        !private.exists(),
        "the private directory goes with the instance"
    );

    common::teardown_kills_everything(&sup).await;
    common::an_exit_kills_everything(&sup).await;
}
