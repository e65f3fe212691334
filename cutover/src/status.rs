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
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    if let Some(headline) = doc["headline"].as_str() {
        println!("{headline}");
    }
    let mut facts = vec![
        ("state", text(&doc["state"]).replace('_', " ")),
        (
            "step",
            format!(
                "{} of {} at green {}%",
                doc["step"],
                doc["steps"],
                number(&doc["green_percent"])
            ),
        ),
        (
            "started",
            format!("{} by {}", text(&doc["started"]), text(&doc["started_by"])),
        ),
    ];
    if let Some(left) = doc["hold"]["left_seconds"].as_u64() {
        facts.push((
            "hold",
            format!("{left}s left of {}s", doc["hold"]["seconds"]),
        ));
    }
    if let Some(gate) = doc["last_gate"].as_object() {
        if let Ok(figures) = serde_json::from_value::<Figures>(gate["figures"].clone()) {
            let line = format!(
                "{} | {}",
                color_line("blue", &figures.blue),
                color_line("green", &figures.green)
            );
            facts.push(("figures", line));
            if let Some(m) = &figures.mirror {
                facts.push(("mirror", crate::output::mirror_line(m)));
            }
        }
        let verdict = &gate["verdict"];
        let mut line = format!("{} at {}", text(&verdict["verdict"]), text(&gate["time"]));
        if let Some(reason) = verdict["reason"].as_str() {
            line += &format!(": {reason}");
        }
        facts.push(("last gate", line));
    }
    if let Some(source) = doc["source"].as_object() {
        let alive = match (source["alive"] == true, doc["ended"] == true) {
            (true, _) => "alive",
            (false, true) => "ended",
            (false, false) => "not alive (its lock is gone: it died or left off in a wait)",
        };
        let line = format!(
            "{} at {} ({alive}); journal {}",
            text(&source["holder"]),
            text(&source["published_at"]),
            text(&doc["journal"]),
        );
        facts.push(("published by", line));
    }
    let last = &doc["last_event"];
    let line = format!(
        "{} at {} by {}",
        text(&last["event"]).replace('_', " "),
        text(&last["time"]),
        text(&last["actor"])
    );
    facts.push(("last event", line));
    for (name, value) in facts {
        println!("  {name:<13}{value}");
    }
    let stages: Vec<(String, String)> = doc["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|stage| {
            let mut state = text(&stage["state"]).replace('_', " ");
            if let Some(t) = stage["not_before"].as_str() {
                state += &format!(" (not before {t})");
            }
            (text(&stage["name"]), state)
        })
        .collect();
    let rows = doc["plan_steps"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return;
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    let mut header = vec!["STEP", "GREEN", "HOLD", "STATE"];
    if !stages.is_empty() {
        header.insert(1, "STAGE");
    }
    table.set_header(header);
    for row in rows {
        let hold = humantime::format_duration(Duration::from_secs(
            row["hold_seconds"].as_u64().unwrap_or(0),
        ));
        let mut state = text(&row["state"]).replace('_', " ");
        if row["approval"] == true && state == "pending" {
            state += " (approval)";
        }
        let green = match row["mirror_percent"].as_f64() {
            Some(m) => format!("mirror {m}%"),
            None => format!("{}%", number(&row["green_percent"])),
        };
        let mut cells = vec![row["step"].to_string(), green, hold.to_string(), state];
        if !stages.is_empty() {
            let name = text(&row["stage"]);
            let stage_state = stages
                .iter()
                .find(|s| s.0 == name)
                .map_or("", |s| s.1.as_str());
            cells.insert(1, format!("{name} ({stage_state})"));
        }
        table.add_row(cells);
    }
    println!("{table}");
}

/// `50` for 50.0, `12.5` for 12.5.
fn number(v: &Value) -> String {
    v.as_f64().map_or("?".into(), |n| n.to_string())
}
