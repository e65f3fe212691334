//! The report as one self-contained HTML page: styles inline, charts as
//! inline SVG, no script and no outside asset, so it can be attached to a
//! ticket, opened offline and printed.

use super::svg::{self, escape, Chart, Series};
use super::{Report, Sample};
use std::fmt::Write;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1c2430; background: #fff; margin: 24px auto; max-width: 920px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dee6; padding-bottom: 4px; }
.outcome { padding: 12px 16px; border-radius: 6px; font-size: 16px; font-weight: 600; border-left: 6px solid; }
.outcome.completed { background: #e8f6ec; border-color: #2a9d4b; } .outcome.rolled_back, .outcome.emergency { background: #fdecec; border-color: #c93c3c; }
.outcome.stopped, .outcome.paused, .outcome.waiting, .outcome.running { background: #fff6e0; border-color: #d19a1f; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e6eaef; vertical-align: top; }
th { background: #f4f6f9; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts td:first-child { color: #5a6675; width: 160px; }
.chart { width: 100%; height: auto; display: block; margin: 4px 0 2px; }
.chart .grid { stroke: #e6eaef; } .chart .tick { font-size: 10px; fill: #5a6675; }
.chart .line { fill: none; stroke-width: 2; } .chart .line.blue { stroke: #1f6fd1; } .chart .line.green { stroke: #2a9d4b; } .chart .line.split { stroke: #2a9d4b; }
.chart .point.blue { fill: #1f6fd1; } .chart .point.green, .chart .point.split { fill: #2a9d4b; }
.chart .threshold { stroke: #c93c3c; stroke-dasharray: 5 4; } .chart .threshold-label { font-size: 10px; fill: #c93c3c; }
.chart .stage.s0 { fill: #f4f6f9; } .chart .stage.s1 { fill: #eaf0f7; } .chart .stage-name { font-size: 10px; fill: #5a6675; }
.legend { font-size: 12px; color: #5a6675; } .legend span { margin-right: 14px; } .sw { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.sw.blue { background: #1f6fd1; } .sw.green { background: #2a9d4b; } .sw.limit { background: #c93c3c; }
.pass { color: #2a7a40; } .fail { color: #b02a2a; font-weight: 600; } .inconclusive { color: #9a6a00; }
.muted { color: #5a6675; } code { font-size: 12px; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } .chart, tr { break-inside: avoid; } }
"#;

pub fn render(report: &Report) -> String {
    let o = &report.outcome;
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cutover report: {state}</title><style>{STYLE}</style></head><body>\n<h1>Cutover report</h1>\n<p class=\"outcome {state}\" id=\"outcome\">{headline}</p>\n",
        state = escape(&o.state),
        headline = escape(&o.headline),
    );
    facts(&mut page, report);
    charts(&mut page, report);
    decisions(&mut page, report);
    mirror_samples(&mut page, report);
    smoke(&mut page, report);
    preflight(&mut page, report);
    page.push_str("</body></html>\n");
    page
}

fn facts(page: &mut String, report: &Report) {
    let o = &report.outcome;
    let rows = [
        ("Plan", report.plan_file.clone().unwrap_or_default()),
        ("Journal", report.journal.clone()),
        ("Started", format!("{} by {}", o.started, o.started_by)),
        ("Last record", o.last_record.clone()),
        ("Duration", svg::clock(o.duration_seconds)),
        ("Green now", format!("{}%", o.green_percent)),
        ("Gate evaluations", report.samples.len().to_string()),
    ];
    page.push_str("<table class=\"facts\">");
    for (name, value) in rows {
        let _ = write!(page, "<tr><td>{name}</td><td>{}</td></tr>", escape(&value));
    }
    page.push_str("</table>\n");
}

fn charts(page: &mut String, report: &Report) {
    let duration = report.outcome.duration_seconds;
    let by_color = |pick: fn(&Sample) -> (Option<f64>, Option<f64>)| {
        let (mut blue, mut green) = (Vec::new(), Vec::new());
        for s in &report.samples {
            let (b, g) = pick(s);
            blue.extend(b.map(|v| (s.seconds, v)));
            green.extend(g.map(|v| (s.seconds, v)));
        }
        vec![
            Series {
                name: "blue",
                class: "blue",
                points: blue,
                steps: false,
            },
            Series {
                name: "green",
                class: "green",
                points: green,
                steps: false,
            },
        ]
    };
    let t = report.thresholds.as_ref();
    let charts = [
        Chart {
            id: "split",
            title: "Green's share of traffic (%)",
            series: vec![Series {
                name: "green",
                class: "split",
                points: report
                    .split
                    .iter()
                    .map(|p| (p.seconds, p.green_percent))
                    .collect(),
                steps: true,
            }],
            threshold: None,
            y_floor_from_data: false,
            y_at_least: 100.0 / 1.05,
            format: |v| format!("{v:.0}%"),
            duration,
            stages: &report.stages,
        },
        Chart {
            id: "rate",
            title: "Requests per second",
            series: by_color(|s| {
                (
                    Some(s.blue.requests_per_second),
                    Some(s.green.requests_per_second),
                )
            }),
            threshold: None,
            y_floor_from_data: false,
            y_at_least: 1.0,
            format: |v| format!("{v:.1}"),
            duration,
            stages: &report.stages,
        },
        Chart {
            id: "success",
            title: "Success rate (%)",
            series: by_color(|s| {
                let pct = |r: Option<f64>| r.map(|r| r * 100.0);
                (pct(s.blue.success_rate), pct(s.green.success_rate))
            }),
            threshold: t.map(|t| {
                (
                    t.success_rate * 100.0,
                    format!("gate: green ≥ {}%", t.success_rate * 100.0),
                )
            }),
            y_floor_from_data: true,
            y_at_least: 100.0,
            format: |v| format!("{v:.1}%"),
            duration,
            stages: &report.stages,
        },
        Chart {
            id: "p99",
            title: "p99 latency (ms)",
            series: by_color(|s| {
                let ms = |p: Option<f64>| p.map(|p| p * 1000.0);
                (ms(s.blue.p99_seconds), ms(s.green.p99_seconds))
            }),
            threshold: t.map(|t| {
                (
                    t.p99_seconds * 1000.0,
                    format!("gate: green ≤ {} ms", t.p99_seconds * 1000.0),
                )
            }),
            y_floor_from_data: false,
            y_at_least: 1.0,
            format: |v| format!("{v:.0} ms"),
            duration,
            stages: &report.stages,
        },
    ];
    let mirrored: Vec<(f64, f64)> = report
        .samples
        .iter()
        .filter_map(|s| Some((s.seconds, s.mirror.as_ref()?.mismatch_rate? * 100.0)))
        .collect();
    let mirror_chart = (!mirrored.is_empty()).then(|| Chart {
        id: "mirror",
        title: "Mirrored answers that differ from blue's (%)",
        series: vec![Series {
            name: "green",
            class: "green",
            points: mirrored,
            steps: false,
        }],
        threshold: t.map(|t| {
            (
                t.max_mismatch_rate * 100.0,
                format!("gate: at most {}%", t.max_mismatch_rate * 100.0),
            )
        }),
        y_floor_from_data: false,
        y_at_least: 1.0,
        format: |v| format!("{v:.1}%"),
        duration,
        stages: &report.stages,
    });
    page.push_str("<h2>Timeline</h2>\n<p class=\"legend\"><span><i class=\"sw blue\"></i>blue</span><span><i class=\"sw green\"></i>green</span><span><i class=\"sw limit\"></i>gate threshold</span><span class=\"muted\">time since the run began (m:ss); one point per gate evaluation</span></p>\n");
    for chart in charts.iter().chain(&mirror_chart) {
        let _ = writeln!(
            page,
            "<h3 class=\"muted\">{}</h3>{}",
            escape(chart.title),
            svg::render(chart)
        );
    }
}

fn decisions(page: &mut String, report: &Report) {
    page.push_str("<h2>Decisions</h2>\n<table id=\"decisions\"><tr><th>at</th><th>time</th><th>who</th><th>what</th><th>why</th></tr>");
    for d in &report.decisions {
        let class = d
            .what
            .split(' ')
            .nth(1)
            .filter(|_| d.event == "gate")
            .unwrap_or("");
        let times = if d.count > 1 {
            format!(" ×{}", d.count)
        } else {
            String::new()
        };
        let _ = write!(
            page,
            "<tr class=\"decision\" data-event=\"{}\" data-count=\"{}\"><td class=\"num\">{}</td><td class=\"muted\" title=\"{}\">{}</td><td>{}</td><td class=\"{class}\">{}{times}</td><td>{}</td></tr>",
            escape(&d.event),
            d.count,
            svg::clock(d.seconds),
            escape(&d.time),
            escape(d.time.get(11..19).unwrap_or(&d.time)),
            escape(&d.actor),
            escape(&d.what),
            escape(d.reason.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</table>\n");
}

/// The differing answers mirror steps journaled: never a header or a body
/// beyond the short difference.
fn mirror_samples(page: &mut String, report: &Report) {
    if report.mirror_samples.is_empty() {
        return;
    }
    page.push_str("<h2>Mirror comparison</h2>\n<table id=\"mirror-samples\"><tr><th>step</th><th>request</th><th>blue</th><th>green</th><th>difference</th><th>request id</th></tr>");
    for s in &report.mirror_samples {
        let text = |k: &str| escape(s[k].as_str().unwrap_or(""));
        let _ = write!(
            page,
            "<tr><td class=\"num\">{}</td><td><code>{} {}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
            s["step"],
            text("method"),
            text("path"),
            s["blue_status"],
            s["green_status"].as_u64().map_or("none".into(), |v| v.to_string()),
            text("difference"),
            text("request_id"),
        );
    }
    page.push_str("</table>\n");
}

fn smoke(page: &mut String, report: &Report) {
    if report.smoke.is_empty() {
        return;
    }
    page.push_str("<h2>Smoke checks</h2>\n<table id=\"smoke\"><tr><th>before step</th><th>check</th><th>result</th><th>status</th><th>latency</th><th>request id</th><th>problem</th></tr>");
    for run in &report.smoke {
        for r in &run.results {
            let _ = write!(
                page,
                "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"{v}\">{v}</td><td class=\"num\">{}</td><td class=\"num\">{} ms</td><td><code>{}</code></td><td>{}</td></tr>",
                run.step,
                escape(&r.name),
                r.status.map_or("-".into(), |s| s.to_string()),
                r.latency_ms,
                escape(r.request_id.as_deref().unwrap_or("")),
                escape(r.problem.as_deref().unwrap_or("")),
                v = if r.passed { "pass" } else { "fail" },
            );
        }
    }
    page.push_str("</table>\n");
}

fn preflight(page: &mut String, report: &Report) {
    if report.preflight.is_empty() {
        return;
    }
    page.push_str("<h2>Preflight</h2>\n<table id=\"preflight\"><tr><th>check</th><th>result</th><th>message</th></tr>");
    for run in &report.preflight {
        for check in run.checks.as_array().into_iter().flatten() {
            let status = check["status"].as_str().unwrap_or("?");
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"{s}\">{s}</td><td>{}</td></tr>",
                escape(check["name"].as_str().unwrap_or("?")),
                escape(check["message"].as_str().unwrap_or("")),
                s = escape(status),
            );
        }
    }
    page.push_str("</table>\n");
}
