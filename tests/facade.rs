//! The facade re-exports the engine: a stack planned, applied and destroyed through `stackup`.

use std::sync::Arc;

use stackup::core::testing::{FakeCloud, FakeProvisioner, FakeSpec};

use stackup::prelude::*;

#[tokio::test]
async fn plan_apply_destroy_through_the_facade() {
    let cloud = FakeCloud::new();
    let mut stack = Stack::new("facade");
    let a = stack.add("a", FakeProvisioner::new(&cloud), FakeSpec::new("x")).unwrap();
    stack.add("b", FakeProvisioner::new(&cloud), FakeSpec::new(a.id().input())).unwrap();
    let engine = Engine::new(stack, Arc::new(MemoryBackend::new()));
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.resource("b").unwrap().action, Action::Create);
    assert!(engine.apply(&plan).await.unwrap().is_success());
    assert_eq!(cloud.objects().len(), 2);
    assert!(engine.plan().await.unwrap().is_empty());
    assert!(engine.destroy().await.unwrap().is_success());
    assert!(cloud.objects().is_empty());
}
