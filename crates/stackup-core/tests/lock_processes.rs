//! Two real processes contend for the local state lock (no test harness: this binary runs
//! itself a second time as the lock holder).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use stackup_core::lock::LockInfo;
use stackup_core::testing::{FakeCloud, FakeProvisioner, FakeSpec};
use stackup_core::{Engine, Error, LocalBackend, Stack, StateBackend};

const CHILD: &str = "STACKUP_LOCK_CHILD_STATE";
const RELEASE: &str = "STACKUP_LOCK_CHILD_RELEASE";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        return child(&path, &std::env::var(RELEASE).expect("release path")).await;
    }
    parent().await;
    println!("lock_processes: 1 passed, 0 failed");
}

/// Takes the lock, says so, waits for the release file, releases.
async fn child(path: &str, release: &str) {
    let backend = LocalBackend::new(path);
    let info = LockInfo::for_operation("apply");
    backend.lock(&info).await.expect("child takes the lock");
    println!("locked {}", info.id);
    while !std::path::Path::new(release).exists() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    backend.unlock(&info).await.expect("child unlocks");
}

async fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let release = dir.path().join("release");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &state)
        .env(RELEASE, &release)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let child_lock_id = line.trim().strip_prefix("locked ").expect("child reported its lock").to_owned();

    let cloud = FakeCloud::new();
    let mut stack = Stack::new("contended");
    stack.add("r", FakeProvisioner::new(&cloud), FakeSpec::new("v")).unwrap();
    let engine = Engine::new(stack, Arc::new(LocalBackend::new(&state)));
    let plan = engine.plan().await.unwrap();
    match engine.apply(&plan).await {
        Err(Error::Locked(holder)) => {
            assert_eq!(holder.id, child_lock_id);
            assert_eq!(holder.pid, child.id(), "the holder's pid is reported");
            assert_eq!(holder.operation, "apply");
            let msg = Error::Locked(holder).to_string();
            assert!(msg.contains("since"), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(cloud.calls().iter().all(|c| c.op != "create"), "nothing created while locked");

    std::fs::write(&release, b"").unwrap();
    assert!(child.wait().unwrap().success());
    let report = engine.apply(&plan).await.expect("lock is free once the holder released it");
    assert!(report.is_success());
    assert_eq!(cloud.objects().len(), 1);
}
