//! Benchmark: plan a sibling cluster into an inventory of 1,000 VNets with
//! 10,000 subnets (plus peers and on-prem ranges). Target: under 50 ms.
//!
//!   cargo run --release -p planner --example bench_plan
//!
//! Prints the median and worst of 25 timed runs (after 3 warm-ups); each
//! run parses the whole inventory and plans, as `cutover network plan` does.

use planner::inventory::{Inventory, NamedRange, Subnet, Vnet};
use planner::sizing::{ClusterShape, NetworkPlugin, NodePool, Surge};
use std::time::{Duration, Instant};

fn inventory() -> Inventory {
    // 1,000 VNets of a /20 each inside 10.0.0.0/8, 10 /24 subnets in each.
    let vnets = (0..1000u32)
        .map(|i| {
            let base = (10u32 << 24) | (i << 12);
            let ip = |n: u32| std::net::Ipv4Addr::from(n).to_string();
            Vnet {
                name: format!("vnet-{i:04}"),
                address_spaces: vec![format!("{}/20", ip(base))],
                subnets: (0..10u32)
                    .map(|j| Subnet {
                        name: format!("snet-{j}"),
                        address_prefix: Some(format!("{}/24", ip(base + (j << 8)))),
                        address_prefixes: vec![],
                    })
                    .collect(),
            }
        })
        .collect();
    let range = |name: &str, cidr: &str| NamedRange {
        name: name.into(),
        cidr: cidr.into(),
    };
    Inventory {
        vnets,
        peered_ranges: vec![range("hub", "10.250.0.0/16")],
        on_prem_ranges: vec![range("dc", "172.16.0.0/12")],
        reserved_ranges: vec![range("later", "10.251.0.0/16")],
    }
}

fn main() {
    let inventory = inventory();
    let subnets: usize = inventory.vnets.iter().map(|v| v.subnets.len()).sum();
    let shape = ClusterShape {
        name: "green".into(),
        network_plugin: NetworkPlugin::AzureCniPodSubnet,
        vnet: Some("vnet-0500".into()),
        node_pools: vec![NodePool {
            name: "apps".into(),
            max_count: 20,
            max_pods: 30,
            max_surge: Surge::Count(2),
        }],
        internal_load_balancers: 2,
        extra_reserved: 0,
        service_cidr: "192.168.0.0/16".into(),
        dns_service_ip: "192.168.0.10".into(),
        pod_cidr: None,
    };
    let mut times = Vec::new();
    let mut report = None;
    for run in 0..28 {
        let started = Instant::now();
        let r = planner::plan(&inventory, &shape).expect("valid input");
        if run >= 3 {
            times.push(started.elapsed());
        }
        report = Some(r);
    }
    times.sort();
    let median = times[times.len() / 2];
    let worst = *times.last().unwrap();
    let r = report.unwrap();
    println!(
        "inventory: {} VNets, {subnets} subnets",
        inventory.vnets.len()
    );
    for s in &r.subnets {
        println!(
            "  {} needs {} → {}",
            s.name,
            s.required_addresses,
            s.cidr.as_deref().unwrap_or("-")
        );
    }
    println!("fits: {}", r.fits);
    println!(
        "plan time over {} runs: median {:.2} ms, worst {:.2} ms (target < 50 ms)",
        times.len(),
        ms(median),
        ms(worst)
    );
    assert!(r.fits, "the benchmark inventory should leave room");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
