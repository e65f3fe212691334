//! The report as Markdown (GitHub's tables), for a change ticket or a pull
//! request: the same sections as the HTML page, the charts as tables.

use super::svg::clock;
use super::Report;
use crate::output::color_line;
use std::fmt::Write;

/// A table cell: pipes escaped, lines joined.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn table(out: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

pub fn render(report: &Report) -> String {
    let o = &report.outcome;
    let mut out = format!("# Cutover report\n\n**{}**\n\n", cell(&o.headline));
    table(
        &mut out,
        &["", ""],
        [
            ("Plan", report.plan_file.clone().unwrap_or_default()),
            ("Journal", report.journal.clone()),
            ("Started", format!("{} by {}", o.started, o.started_by)),
            ("Last record", o.last_record.clone()),
            ("Duration", clock(o.duration_seconds)),
            ("Green now", format!("{}%", o.green_percent)),
        ]
        .into_iter()
        .map(|(k, v)| vec![k.to_owned(), v]),
    );
    out.push_str("## Split\n\n");
    table(
        &mut out,
        &["at", "step", "green", "event"],
        report.split.iter().map(|p| {
            vec![
                clock(p.seconds),
                p.step.to_string(),
                format!("{}%", p.green_percent),
                p.event.clone(),
            ]
        }),
    );
    if let Some(t) = &report.thresholds {
        let _ = writeln!(
            out,
            "## Gate evaluations\n\nGreen must keep a success rate ≥ {}% and p99 ≤ {} ms with at least {} requests in the window.\n",
            t.success_rate * 100.0,
            t.p99_seconds * 1000.0,
            t.min_requests
        );
    } else {
        out.push_str("## Gate evaluations\n\n");
    }
    table(
        &mut out,
        &["at", "step", "green", "verdict", "blue", "green figures"],
        report.samples.iter().map(|s| {
            vec![
                clock(s.seconds),
                s.step.to_string(),
                format!("{}%", s.green_percent),
                s.verdict.clone(),
                color_line("blue", &s.blue),
                match &s.mirror {
                    Some(m) => format!("mirror: {}", crate::output::mirror_line(m)),
                    None => color_line("green", &s.green),
                },
            ]
        }),
    );
    out.push_str("## Decisions\n\n");
    table(
        &mut out,
        &["at", "who", "what", "why"],
        report.decisions.iter().map(|d| {
            let times = if d.count > 1 {
                format!(" ×{}", d.count)
            } else {
                String::new()
            };
            vec![
                clock(d.seconds),
                d.actor.clone(),
                format!("{}{times}", d.what),
                d.reason.clone().unwrap_or_default(),
            ]
        }),
    );
    if !report.mirror_samples.is_empty() {
        out.push_str("## Mirror comparison\n\n");
        table(
            &mut out,
            &["step", "request", "blue", "green", "difference"],
            report.mirror_samples.iter().map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                vec![
                    s["step"].to_string(),
                    format!("{} {}", text("method"), text("path")),
                    s["blue_status"].to_string(),
                    s["green_status"]
                        .as_u64()
                        .map_or("none".into(), |v| v.to_string()),
                    text("difference"),
                ]
            }),
        );
    }
    if !report.smoke.is_empty() {
        out.push_str("## Smoke checks\n\n");
        table(
            &mut out,
            &[
                "before step",
                "check",
                "result",
                "status",
                "latency",
                "request id",
                "problem",
            ],
            report.smoke.iter().flat_map(|run| {
                run.results.iter().map(move |r| {
                    vec![
                        run.step.to_string(),
                        r.name.clone(),
                        if r.passed { "pass" } else { "fail" }.into(),
                        r.status.map_or("-".into(), |s| s.to_string()),
                        format!("{} ms", r.latency_ms),
                        r.request_id.clone().unwrap_or_default(),
                        r.problem.clone().unwrap_or_default(),
                    ]
                })
            }),
        );
    }
    if !report.preflight.is_empty() {
        out.push_str("## Preflight\n\n");
        table(
            &mut out,
            &["check", "result", "message"],
            report.preflight.iter().flat_map(|run| {
                run.checks
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| {
                        vec![
                            c["name"].as_str().unwrap_or("?").to_owned(),
                            c["status"].as_str().unwrap_or("?").to_owned(),
                            c["message"].as_str().unwrap_or("").to_owned(),
                        ]
                    })
            }),
        );
    }
    out
}
