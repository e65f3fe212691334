//! Placement and conflicts on hand-made inventories with known answers,
//! and a property test over random ones.

use planner::inventory::{Inventory, NamedRange, Subnet, Vnet};
use planner::sizing::{ClusterShape, NetworkPlugin, NodePool, Surge};
use planner::space::Block;
use proptest::prelude::*;

fn vnet(spaces: &[&str], subnets: &[&str]) -> Inventory {
    Inventory {
        vnets: vec![Vnet {
            name: "vnet".into(),
            address_spaces: spaces.iter().map(|s| s.to_string()).collect(),
            subnets: subnets
                .iter()
                .enumerate()
                .map(|(i, s)| Subnet {
                    name: format!("s{i}"),
                    address_prefix: Some(s.to_string()),
                    address_prefixes: vec![],
                })
                .collect(),
        }],
        ..Inventory::default()
    }
}

fn cluster(plugin: NetworkPlugin, nodes: u32, pods: u32) -> ClusterShape {
    ClusterShape {
        name: "green".into(),
        network_plugin: plugin,
        vnet: None,
        node_pools: vec![NodePool {
            name: "p".into(),
            max_count: nodes,
            max_pods: pods,
            max_surge: Surge::Count(1),
        }],
        internal_load_balancers: 0,
        extra_reserved: 0,
        service_cidr: "10.200.0.0/16".into(),
        dns_service_ip: "10.200.0.10".into(),
        pod_cidr: Some("100.64.0.0/16".into()),
    }
}

fn placed(report: &planner::Report) -> Vec<Option<String>> {
    report.subnets.iter().map(|s| s.cidr.clone()).collect()
}

#[test]
fn first_aligned_fit_after_blue() {
    // Blue's /22 at the start; green needs a /21 (1,581 addresses): the
    // first /21 boundary after it is 10.1.8.0.
    let r = planner::plan(
        &vnet(&["10.1.0.0/16"], &["10.1.0.0/22"]),
        &cluster(NetworkPlugin::AzureCni, 50, 30),
    )
    .unwrap();
    assert_eq!(placed(&r), [Some("10.1.8.0/21".to_string())]);
    assert_eq!(r.subnets[0].required_addresses, 1_581);
    assert!(r.fits);
}

#[test]
fn best_fit_takes_the_smallest_hole_and_places_largest_first() {
    // Holes: 10.2.1.0/24 (between used blocks), 10.2.4.0/22, then the tail.
    let inv = vnet(
        &["10.2.0.0/16"],
        &[
            "10.2.0.0/24",
            "10.2.2.0/23",
            "10.2.8.0/21",
            "10.2.16.0/20",
            "10.2.32.0/19",
            "10.2.64.0/18",
            "10.2.128.0/17",
        ],
    );
    let mut shape = cluster(NetworkPlugin::AzureCniPodSubnet, 10, 30);
    shape.internal_load_balancers = 4;
    let r = planner::plan(&inv, &shape).unwrap();
    // pods: 11 × 32 = 352 → /23 goes first, into the /22 hole; nodes: 15 → /27 into the /24 hole.
    let by_name: Vec<(String, Option<String>)> = r
        .subnets
        .iter()
        .map(|s| (s.name.clone(), s.cidr.clone()))
        .collect();
    assert_eq!(
        by_name,
        [
            ("green-pods".to_string(), Some("10.2.4.0/23".to_string())),
            ("green-nodes".to_string(), Some("10.2.1.0/27".to_string()))
        ]
    );
}

#[test]
fn fragmented_space_and_nothing_fits() {
    // Four free /26 holes, none adjacent: a /25 cannot fit.
    let inv = vnet(
        &["10.3.0.0/23"],
        &[
            "10.3.0.64/26",
            "10.3.0.192/26",
            "10.3.1.64/26",
            "10.3.1.192/26",
        ],
    );
    let r = planner::plan(&inv, &cluster(NetworkPlugin::AzureCniOverlay, 100, 30)).unwrap();
    assert!(!r.fits);
    let s = &r.subnets[0];
    assert_eq!(
        (s.required_addresses, s.prefix_length, s.cidr.as_deref()),
        (101, Some(25), None)
    );
    let problem = s.problem.as_deref().unwrap();
    assert!(
        problem.contains("largest free block is 10.3.0.0/26") && problem.contains("42 short"),
        "{problem}"
    );
    // A smaller cluster fits the first hole.
    let r = planner::plan(&inv, &cluster(NetworkPlugin::AzureCniOverlay, 40, 30)).unwrap();
    assert_eq!(placed(&r), [Some("10.3.0.0/26".to_string())]);
}

#[test]
fn conflicts_name_what_collides() {
    let mut inv = vnet(&["10.4.0.0/16"], &[]);
    inv.peered_ranges.push(NamedRange {
        name: "hub".into(),
        cidr: "10.200.0.0/20".into(),
    });
    inv.on_prem_ranges.push(NamedRange {
        name: "dc1".into(),
        cidr: "100.64.128.0/17".into(),
    });
    let mut shape = cluster(NetworkPlugin::Kubenet, 10, 30);
    shape.dns_service_ip = "10.200.0.0".into();
    let r = planner::plan(&inv, &shape).unwrap();
    assert!(!r.fits);
    let text: Vec<String> = r
        .conflicts
        .iter()
        .map(|c| format!("{} {}", c.field, c.message))
        .collect();
    let all = text.join("\n");
    assert!(
        all.contains("service_cidr overlaps peered range hub"),
        "{all}"
    );
    assert!(all.contains("pod_cidr overlaps on-prem range dc1"), "{all}");
    assert!(
        all.contains("dns_service_ip must not be the first address"),
        "{all}"
    );
    shape.service_cidr = "169.254.0.0/16".into();
    shape.dns_service_ip = "10.0.0.10".into();
    let r = planner::plan(&inv, &shape).unwrap();
    let all: String = r
        .conflicts
        .iter()
        .map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("169.254.0.0/16, link-local"), "{all}");
    assert!(all.contains("must lie inside service_cidr"), "{all}");
}

#[test]
fn overlapping_inventory_subnets_warn_and_bad_entries_are_named() {
    let r = planner::plan(
        &vnet(&["10.5.0.0/16"], &["10.5.0.0/24", "10.5.0.128/25"]),
        &cluster(NetworkPlugin::AzureCniOverlay, 3, 30),
    )
    .unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("overlap")),
        "{:?}",
        r.warnings
    );
    assert!(r.fits);
    let err = planner::plan(
        &vnet(&["10.5.0.0/16"], &["10.5.0.0/33"]),
        &cluster(NetworkPlugin::AzureCniOverlay, 3, 30),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "vnets[0] (vnet).subnets[0] (s0).address_prefix: \"10.5.0.0/33\" is not a CIDR"
        ),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn placed_blocks_lie_in_the_space_and_overlap_nothing(
        used in proptest::collection::vec((0u32..256, 20u8..29), 0..40),
        nodes in 1u32..400,
        pods in 10u32..120,
        plugin in prop_oneof![Just(NetworkPlugin::AzureCni), Just(NetworkPlugin::AzureCniPodSubnet), Just(NetworkPlugin::AzureCniOverlay)],
    ) {
        let subnets: Vec<String> = used.iter().map(|(i, len)| format!("10.9.{i}.0/{len}")).collect();
        let refs: Vec<&str> = subnets.iter().map(String::as_str).collect();
        let inv = vnet(&["10.9.0.0/16"], &refs);
        let report = planner::plan(&inv, &cluster(plugin, nodes, pods)).unwrap();
        let space = Block::of("10.9.0.0/16".parse().unwrap());
        let taken: Vec<Block> = subnets.iter().map(|s| Block::of(s.parse().unwrap())).collect();
        let chosen: Vec<Block> = report.subnets.iter().filter_map(|s| s.cidr.as_ref()).map(|c| Block::of(c.parse().unwrap())).collect();
        for (i, b) in chosen.iter().enumerate() {
            prop_assert!(space.contains(b));
            prop_assert!(taken.iter().all(|t| !t.overlaps(b)), "{:?} overlaps a used subnet", b);
            prop_assert!(chosen.iter().enumerate().all(|(j, o)| i == j || !o.overlaps(b)));
        }
        for s in &report.subnets {
            if let (Some(len), Some(usable)) = (s.prefix_length, s.usable_addresses) {
                prop_assert!(usable >= s.required_addresses);
                prop_assert_eq!(usable, (1u128 << (32 - u32::from(len))) - 5);
            }
        }
    }
}
