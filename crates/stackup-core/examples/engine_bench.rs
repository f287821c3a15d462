//! Engine benchmark: synthetic graphs on the in-memory provisioner.
//!
//! For each graph it prints the wall time of `apply` (median of three runs), the critical-path
//! lower bound (the longest dependency chain's summed latency) and their ratio, then the
//! engine's own overhead per resource (the same graph with zero latency). The bound is computed
//! twice: from the latencies asked of the fake provisioner, and from the latencies its calls
//! really took (a tokio sleep ends on the next millisecond tick, about 1 ms late, which is the
//! fake's delay, not the engine's); the ratio uses the second. Ends with
//! `critical-path ratio: X` (the worst graph).
//!
//! Run: `cargo run --release -p stackup-core --features test-util --example engine_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stackup_core::testing::{FakeCloud, FakeProvisioner, FakeSpec};
use stackup_core::{Engine, Input, LocalBackend, MemoryBackend, OutputRef, Stack, StateBackend, TemplatePart};

/// A graph: for each node, the indices of its dependencies (always earlier nodes).
struct Graph {
    name: &'static str,
    deps: Vec<Vec<usize>>,
}

impl Graph {
    /// The graph's width: the most nodes that are pairwise independent (a largest antichain),
    /// which is the most that can ever run at once. By Dilworth's theorem it is the node count
    /// minus a maximum matching between "before" and "after" copies of the nodes in the
    /// transitive closure.
    fn width(&self) -> usize {
        let n = self.deps.len();
        // reach[i][j]: j is a (transitive) dependency of i. Dependencies are earlier nodes.
        let mut reach = vec![vec![false; n]; n];
        for i in 0..n {
            let (earlier, rest) = reach.split_at_mut(i);
            for &d in &self.deps[i] {
                rest[0][d] = true;
                for (r, &via) in rest[0].iter_mut().zip(&earlier[d]) {
                    *r |= via;
                }
            }
        }
        // Kuhn's augmenting paths: match each node to one of its dependencies.
        fn augment(i: usize, reach: &[Vec<bool>], seen: &mut [bool], owner: &mut [Option<usize>]) -> bool {
            for j in 0..reach.len() {
                if reach[i][j] && !seen[j] {
                    seen[j] = true;
                    if owner[j].is_none_or(|k| augment(k, reach, seen, owner)) {
                        owner[j] = Some(i);
                        return true;
                    }
                }
            }
            false
        }
        let mut owner = vec![None; n];
        let matched = (0..n).filter(|&i| augment(i, &reach, &mut vec![false; n], &mut owner)).count();
        n - matched
    }

    fn critical_path(&self, latency: &[Duration]) -> Duration {
        let mut finish = vec![Duration::ZERO; self.deps.len()];
        for i in 0..self.deps.len() {
            let start = self.deps[i].iter().map(|&d| finish[d]).max().unwrap_or(Duration::ZERO);
            finish[i] = start + latency[i];
        }
        finish.into_iter().max().unwrap_or_default()
    }

    fn stack(&self, cloud: &FakeCloud) -> Stack {
        let mut s = Stack::new(self.name);
        for (i, deps) in self.deps.iter().enumerate() {
            let value = if deps.is_empty() {
                Input::Value(format!("n{i}"))
            } else {
                let mut parts: Vec<TemplatePart> = vec![];
                for d in deps {
                    parts.push(TemplatePart::Ref(OutputRef::new(format!("n{d}"), "id")));
                    parts.push("+".into());
                }
                Input::Template(parts)
            };
            s.add(&format!("n{i}"), FakeProvisioner::new(cloud), FakeSpec::new(value)).expect("add");
        }
        s
    }
}

/// Layers of the given widths; each node depends on 1-3 nodes of the previous layer (all of it
/// when that layer has one node: fan-in), so layers after a single node fan out.
fn layered(name: &'static str, widths: &[usize], rng: &mut StdRng) -> Graph {
    let mut deps = vec![];
    let mut prev: Vec<usize> = vec![];
    for &w in widths {
        let mut layer = vec![];
        for _ in 0..w {
            let i = deps.len();
            let mut d: Vec<usize> = if prev.len() <= 3 {
                prev.clone()
            } else {
                (0..rng.random_range(1..=3)).map(|_| prev[rng.random_range(0..prev.len())]).collect()
            };
            d.sort_unstable();
            d.dedup();
            deps.push(d);
            layer.push(i);
        }
        prev = layer;
    }
    Graph { name, deps }
}

fn random_dag(name: &'static str, n: usize, rng: &mut StdRng) -> Graph {
    let deps = (0..n)
        .map(|i| {
            if i == 0 {
                return vec![];
            }
            let mut d: Vec<usize> = (0..rng.random_range(0..=2)).map(|_| rng.random_range(0..i)).collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    Graph { name, deps }
}

/// One apply of `graph`: its wall time and the latency each node's call really took.
async fn run(
    graph: &Graph,
    latency: &[Duration],
    backend: Arc<dyn StateBackend>,
    parallelism: usize,
) -> (Duration, Vec<Duration>) {
    let cloud = FakeCloud::new();
    for (i, l) in latency.iter().enumerate() {
        cloud.set_latency_for(&format!("n{i}"), *l);
    }
    let engine = Engine::new(graph.stack(&cloud), backend).parallelism(parallelism);
    let plan = engine.plan().await.expect("plan");
    let start = Instant::now();
    let report = engine.apply(&plan).await.expect("apply");
    let elapsed = start.elapsed();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(cloud.objects().len(), graph.deps.len());
    let taken = (0..graph.deps.len()).map(|i| cloud.latency_taken(&format!("n{i}")).unwrap_or_default()).collect();
    (elapsed, taken)
}

#[tokio::main]
async fn main() {
    let mut rng = StdRng::seed_from_u64(42);
    let graphs = vec![
        layered("fan-out/fan-in 200", &[1, 40, 1, 60, 60, 38], &mut rng),
        layered("diamond chain 200", &[1, 49, 1, 49, 1, 49, 1, 49], &mut rng),
        random_dag("random DAG 200", 200, &mut rng),
        Graph { name: "chain 50", deps: (0..50).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect() },
        Graph { name: "independent 200", deps: vec![vec![]; 200] },
    ];
    let mut worst: f64 = 0.0;
    let mut worst_nominal: f64 = 0.0;
    println!(
        "{:<22} {:>5} {:>6} {:>9} {:>11} {:>11} {:>7} {:>10}",
        "graph", "nodes", "width", "wall ms", "c.p. asked", "c.p. slept", "ratio", "vs asked"
    );
    for g in &graphs {
        let latency: Vec<Duration> =
            (0..g.deps.len()).map(|_| Duration::from_millis(rng.random_range(20..=80))).collect();
        let width = g.width();
        let asked = g.critical_path(&latency);
        // The median of three runs, each against the latencies its calls really took.
        let mut runs = vec![];
        for _ in 0..3 {
            let (wall, taken) = run(g, &latency, Arc::new(MemoryBackend::new()), width.max(10)).await;
            runs.push((wall.as_secs_f64() / g.critical_path(&taken).as_secs_f64(), wall, g.critical_path(&taken)));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, wall, slept) = runs[1];
        let nominal = wall.as_secs_f64() / asked.as_secs_f64();
        worst = worst.max(ratio);
        worst_nominal = worst_nominal.max(nominal);
        println!(
            "{:<22} {:>5} {:>6} {:>9.1} {:>11.1} {:>11.1} {:>7.3} {:>10.3}",
            g.name,
            g.deps.len(),
            width,
            wall.as_secs_f64() * 1e3,
            asked.as_secs_f64() * 1e3,
            slept.as_secs_f64() * 1e3,
            ratio,
            nominal
        );
    }
    println!(
        "(c.p. asked: the longest chain of the latencies asked for; c.p. slept: of the latencies the \
         fake calls really took, tokio's timer adding about 1 ms to each sleep; ratio = wall / c.p. slept)"
    );

    // Engine overhead: the same graphs with zero latency, in memory and on a local file.
    println!();
    for g in &graphs[..1] {
        let zero = vec![Duration::ZERO; g.deps.len()];
        let mut best_mem = Duration::MAX;
        let mut best_file = Duration::MAX;
        for _ in 0..5 {
            best_mem = best_mem.min(run(g, &zero, Arc::new(MemoryBackend::new()), 10).await.0);
            let dir = tempfile::tempdir().expect("tempdir");
            let file = Arc::new(LocalBackend::new(dir.path().join("state.json")));
            best_file = best_file.min(run(g, &zero, file, 10).await.0);
        }
        let n = g.deps.len() as f64;
        println!(
            "engine overhead ({}, zero latency, parallelism 10): {:.1} us/resource in memory, {:.1} us/resource with local-file state (fsync per group commit)",
            g.name,
            best_mem.as_secs_f64() * 1e6 / n,
            best_file.as_secs_f64() * 1e6 / n
        );
    }
    println!("critical-path ratio vs the latencies asked for: {worst_nominal:.3}");
    println!("critical-path ratio: {worst:.3}");
}
