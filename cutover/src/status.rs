//! `cutover status [--watch]`: where the newest run stands, read from the
//! journal (beside it: while `run` is active, after it died, or in a
//! stage's wait of days), or with `--plan` from what the run published to
//! its fleet (any terminal that reaches the fleet).

use crate::commands::remote;
use crate::engine::EngineError;
use crate::figures::Figures;
use crate::journal;
use crate::output::{color_line, Output};
use crate::plan::Plan;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// The newest run's state in the journal at `journal_path`.
pub fn status_doc(journal_path: &Path) -> Result<Value, EngineError> {
    if !journal_path.exists() {
        return Err(EngineError::Refused(format!(
            "no journal at {}: no cutover has run here (--journal or CUTOVER_JOURNAL names another, --plan reads a run's progress from its fleet)",
            journal_path.display()
        )));
    }
    let records = journal::read_all(journal_path)?;
    let run = journal::last_run(&records);
    crate::progress::of(run, &journal_path.display().to_string()).ok_or_else(|| {
        EngineError::Refused(format!(
            "journal {} holds no cutover",
            journal_path.display()
        ))
    })
}

/// Where `status` reads the run from.
pub enum Source<'a> {
    Journal(&'a Path),
    /// The plan's fleet (the plan and the file it was read from).
    Fleet(&'a Plan, &'a Path),
}

impl Source<'_> {
    async fn doc(&self) -> Result<Value, EngineError> {
        match self {
            Source::Journal(path) => status_doc(path),
            Source::Fleet(plan, path) => fleet_doc(plan, path).await,
        }
    }
}

/// What the plan's run last published to its fleet, with the hold's time
/// left brought up to now and where it came from.
pub async fn fleet_doc(plan: &Plan, plan_path: &Path) -> Result<Value, EngineError> {
    let found = remote::find_run(plan, plan_path).await?;
    let Some((found, published)) = found.and_then(|f| f.progress.clone().map(|p| (f, p))) else {
        return Err(EngineError::Refused(format!(
            "no run has published its progress to {}'s fleet (a run publishes while it holds the lock)",
            plan_path.display()
        )));
    };
    let mut doc = published.progress;
    let since = humantime::parse_rfc3339(&published.published_at)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    if let Some(left) = doc["hold"]["left_seconds"].as_u64() {
        doc["hold"]["left_seconds"] = json!(left.saturating_sub(since.as_secs()));
    }
    doc["source"] = json!({
        "fleet_of_stage": found.stage + 1,
        "published_at": published.published_at,
        "holder": published.holder,
        "alive": found.alive(),
    });
    Ok(doc)
}

/// `status`: prints where the run stands once.
pub async fn status(source: &Source<'_>, out: &Output) -> Result<Value, EngineError> {
    let doc = source.doc().await?;
    print(&doc, out);
    Ok(doc)
}

/// `status --watch`: reprints every `interval` until the run ends, or
/// until `timeout` runs out; returns the last document.
pub async fn watch(
    source: &Source<'_>,
    out: &Output,
    interval: Duration,
    timeout: Option<Duration>,
) -> Result<Value, EngineError> {
    let clear = !out.is_machine() && std::io::stdout().is_terminal();
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let doc = source.doc().await?;
        if clear {
            print!("\x1b[2J\x1b[H"); // clear the screen, cursor home
        }
        print(&doc, out);
        let _ = std::io::stdout().flush();
        if doc["ended"] == true {
            return Ok(doc);
        }
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            eprintln!(
                "timed out after {}: the run is {}",
                humantime::format_duration(timeout.unwrap_or_default()),
                doc["state"].as_str().unwrap_or("?")
            );
            return Ok(doc);
        }
        tokio::time::sleep(left.map_or(interval, |l| l.min(interval))).await;
    }
}

fn print(doc: &Value, out: &Output) {
    if out.is_machine() {
        out.document(doc);
        return;
    }
    println!(
        "cutover {}: step {} of {} at green {}% (started {} by {})",
        doc["state"].as_str().unwrap_or("?"),
        doc["step"],
        doc["steps"],
        number(&doc["green_percent"]),
        doc["started"].as_str().unwrap_or("?"),
        doc["started_by"].as_str().unwrap_or("?"),
    );
    for (i, stage) in doc["stages"].as_array().into_iter().flatten().enumerate() {
        let mut line = format!(
            "  stage {} {}: {}",
            i + 1,
            stage["name"].as_str().unwrap_or("?"),
            stage["state"].as_str().unwrap_or("?")
        );
        if let Some(t) = stage["not_before"].as_str() {
            line += &format!(" (not before {t})");
        }
        if stage["state"] == "running" && stage["step"].is_number() {
            line += &format!(
                " at step {} (green {}%)",
                stage["step"],
                number(&stage["green_percent"])
            );
        }
        println!("{line}");
    }
    if let Some(left) = doc["hold"]["left_seconds"].as_u64() {
        println!("hold: {left}s left of {}s", doc["hold"]["seconds"]);
    }
    if let Some(gate) = doc["last_gate"].as_object() {
        if let Ok(figures) = serde_json::from_value::<Figures>(gate["figures"].clone()) {
            println!(
                "figures: {} | {}",
                color_line("blue", &figures.blue),
                color_line("green", &figures.green)
            );
        }
        println!(
            "last gate: {} at {}",
            gate["verdict"],
            gate["time"].as_str().unwrap_or("?")
        );
    }
    println!("steps passed: {}", doc["steps_passed"]);
    if let Some(source) = doc["source"].as_object() {
        let alive = match (source["alive"] == true, doc["ended"] == true) {
            (true, _) => "alive",
            (false, true) => "ended",
            (false, false) => "not alive (its lock is gone: it died or left off in a wait)",
        };
        println!(
            "published by {} at {} ({alive}); journal {}",
            source["holder"].as_str().unwrap_or("?"),
            source["published_at"].as_str().unwrap_or("?"),
            doc["journal"].as_str().unwrap_or("?"),
        );
    }
    println!(
        "last event: {} at {} by {}",
        doc["last_event"]["event"].as_str().unwrap_or("?"),
        doc["last_event"]["time"].as_str().unwrap_or("?"),
        doc["last_event"]["actor"].as_str().unwrap_or("?")
    );
}

/// `50` for 50.0, `12.5` for 12.5.
fn number(v: &Value) -> String {
    v.as_f64().map_or("?".into(), |n| n.to_string())
}
