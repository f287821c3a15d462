//! A demo stack of in-memory resources: plan, apply, re-plan (no changes), destroy, with a
//! progress display driven by the engine's event stream. No cloud account needed.
//!
//! Run: `cargo run -p stackup --features test-util --example demo`

use std::sync::Arc;

use stackup::core::testing::{FakeCloud, FakeProvisioner, FakeSpec};

use stackup::prelude::*;

fn demo_stack(cloud: &FakeCloud) -> Result<Stack, Error> {
    let mut stack = Stack::new("demo");
    let vnet = stack.add("vnet", FakeProvisioner::new(cloud), FakeSpec::new("10.0.0.0/16"))?;
    let subnet = stack.add(
        "subnet",
        FakeProvisioner::new(cloud),
        FakeSpec::new(Input::template([TemplatePart::Ref(vnet.output("value")), " > 10.0.1.0/24".into()])),
    )?;
    let storage = stack.add(
        "storage",
        FakeProvisioner::new(cloud),
        FakeSpec::new("blossomdata").secret(Secret::new("demo-storage-key-0123456789")),
    )?;
    for vm in ["vm-a", "vm-b"] {
        stack.add(
            vm,
            FakeProvisioner::new(cloud),
            FakeSpec::new(subnet.id().input())
                .immutable("Ubuntu 22.04")
                .secret(Input::template(["password=".into(), TemplatePart::Ref(storage.output("secret"))])),
        )?;
    }
    Ok(stack)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cloud = FakeCloud::new();
    cloud.set_latency(std::time::Duration::from_millis(50), std::time::Duration::from_millis(150));
    let engine = Engine::new(demo_stack(&cloud)?, Arc::new(MemoryBackend::new()));

    // Progress from the event stream; `done` is signalled at the end of each run.
    let mut events = engine.events();
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let progress = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e.kind {
                EventKind::ResourceStarted { address, action } => {
                    println!("  [{:>3}] {} {address}…", e.seq, action.symbol())
                }
                EventKind::ResourceFinished { address, action, elapsed_ms } => {
                    println!("  [{:>3}] {} {address} done in {elapsed_ms} ms", e.seq, action.symbol())
                }
                EventKind::ResourceFailed { address, error, .. } => println!("  [{:>3}] ! {address}: {error}", e.seq),
                EventKind::Summary { done, elapsed_ms, .. } => {
                    println!("  [{:>3}] {} in {elapsed_ms} ms", e.seq, done.done_text());
                    let _ = done_tx.send(());
                }
                _ => {}
            }
        }
    });

    let plan = engine.plan().await?;
    println!("{}", plan.render());
    println!("apply:");
    engine.apply(&plan).await?.into_result()?;
    done.recv().await;

    let again = engine.plan().await?;
    println!("\nsecond plan: {} (zero mutating calls on re-apply)", again.summary);
    engine.apply(&again).await?.into_result()?;
    done.recv().await;

    println!("\ndestroy:");
    engine.destroy().await?.into_result()?;
    done.recv().await;
    println!("objects left in the demo cloud: {}", cloud.objects().len());
    drop(engine);
    progress.abort();
    Ok(())
}
