//! `cutover plan check PLAN`: what `cutover run PLAN` would do, without
//! doing it. The plan is validated as a run validates it, each stage's
//! fleet is resolved as a run resolves it (its token read, a `kubernetes:`
//! fleet's replicas found through its headless Service), and the steps,
//! gates and checks are printed. Nothing is written: no journal, no lock,
//! no split, no request to a gateway.

use crate::fleet::Fleet;
use crate::outcome::exit;
use crate::output::Output;
use crate::plan::{self, Plan};
use serde_json::{json, Value};
use std::path::Path;

/// Checks the plan at `path` and prints what a run would do; the exit
/// code is `DONE` when every fleet resolved, `FAILED` when one did not.
pub async fn check(plan: &Plan, path: &Path, out: &Output) -> u8 {
    let schedule = plan.schedule();
    let mut stages = Vec::new();
    let mut unresolved = 0;
    let mut number = 0;
    for stage in &schedule.stages {
        let fleet = match &stage.fleet {
            Some(f) => resolve(f).await,
            None => json!({"error": "no fleet"}),
        };
        unresolved += usize::from(fleet.get("error").is_some());
        let steps: Vec<Value> = stage
            .steps
            .iter()
            .map(|s| {
                number += 1;
                json!({"step": number, "green_percent": s.green_percent, "mirror_percent": s.mirror_percent,
                       "hold": humantime::format_duration(s.hold).to_string(), "approval": s.approval})
            })
            .collect();
        stages.push(json!({
            "name": stage.name,
            "wait_before": stage.wait_before.map(|w| humantime::format_duration(w).to_string()),
            "approval": stage.approval,
            "fleet": fleet,
            "steps": steps,
        }));
    }
    let g = &plan.gates;
    let doc = json!({
        "plan": path.display().to_string(),
        "valid": true,
        "fleets_resolved": unresolved == 0,
        "routes": plan.routes,
        "stages": stages,
        "gates": {
            "source": g.source,
            "interval": humantime::format_duration(g.interval).to_string(),
            "window": humantime::format_duration(g.window).to_string(),
            "min_requests": g.min_requests,
            "success_rate": g.success_rate,
            "failure_limit": g.failure_limit,
        },
        "smoke": plan.smoke.iter().map(|s| format!("{} {} {} → {}", s.name, s.method, s.path, s.expect_status)).collect::<Vec<_>>(),
        "preflight": plan.preflight.as_ref().map(|p| format!("blue {} → green {}", p.blue_context, p.green_context)),
        "rollback_to": plan.rollback.to,
        "notify": plan.notify.len(),
        "written": "nothing",
    });
    if out.is_machine() {
        out.document(&doc);
    } else {
        print_human(&doc);
    }
    if unresolved == 0 {
        exit::DONE
    } else {
        exit::FAILED
    }
}

/// A stage's fleet as a run would find it: its replicas, or why not.
async fn resolve(fleet: &plan::Fleet) -> Value {
    let source = match &fleet.kubernetes {
        Some(k) => format!(
            "headless Service {}/{} (admin port {})",
            k.namespace, k.service, k.admin_port
        ),
        None => "admin_urls".to_owned(),
    };
    match Fleet::from_plan(fleet).await {
        Ok(f) => json!({"source": source, "replicas": f.replicas, "token_env": fleet.token_env}),
        Err(e) => json!({"source": source, "token_env": fleet.token_env, "error": e.to_string()}),
    }
}

fn print_human(doc: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("plan {}: valid", text(&doc["plan"]));
    println!("routes: {}", join(&doc["routes"]));
    for (i, stage) in doc["stages"].as_array().into_iter().flatten().enumerate() {
        let mut head = format!("stage {} ({})", i + 1, text(&stage["name"]));
        if let Some(w) = stage["wait_before"].as_str() {
            head += &format!(", waits {w} before it begins");
        }
        if stage["approval"] == true {
            head += ", needs approval";
        }
        println!("{head}");
        let fleet = &stage["fleet"];
        match fleet["error"].as_str() {
            Some(e) => println!("  fleet: {}: NOT RESOLVED: {e}", text(&fleet["source"])),
            None => println!(
                "  fleet: {}: {} (token from {})",
                text(&fleet["source"]),
                join(&fleet["replicas"]),
                text(&fleet["token_env"])
            ),
        }
        for step in stage["steps"].as_array().into_iter().flatten() {
            let what = match step["mirror_percent"].as_f64() {
                Some(m) => format!("mirror {m}% of blue's requests to green"),
                None => format!(
                    "green {}%",
                    step["green_percent"].as_f64().unwrap_or_default()
                ),
            };
            println!(
                "  step {}: {what}, hold {}{}",
                step["step"],
                text(&step["hold"]),
                if step["approval"] == true {
                    ", needs approval"
                } else {
                    ""
                }
            );
        }
    }
    let g = &doc["gates"];
    println!(
        "gates: {} every {} over {}: success rate ≥ {}, at least {} requests, {} failure(s) roll back",
        text(&g["source"]),
        text(&g["interval"]),
        text(&g["window"]),
        g["success_rate"],
        g["min_requests"],
        g["failure_limit"]
    );
    println!("smoke checks before each step: {}", join(&doc["smoke"]));
    if let Some(p) = doc["preflight"].as_str() {
        println!("preflight: {p}");
    }
    println!(
        "rollback to: {}; notification receivers: {}",
        text(&doc["rollback_to"]),
        doc["notify"]
    );
    println!("nothing was written (no journal, no lock, no split)");
}

fn join(list: &Value) -> String {
    let items: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
