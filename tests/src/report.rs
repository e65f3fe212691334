//! Checks of `cutover report` against the journal it was made from: the
//! HTML page in a real browser, the Markdown through a parser, the JSON.

use crate::Cutover;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct CheckedReport {
    pub json: Value,
    pub markdown: String,
    /// The page's DOM as Chromium parsed it (empty where it is absent).
    pub dom: String,
    pub screenshot: PathBuf,
}

/// The values a chart drew for one series (`{chart}-{series}`), in order.
pub fn points(dom: &str, series: &str) -> Vec<f64> {
    let marker = format!(r#"data-series="{series}""#);
    dom.split(&marker)
        .skip(1)
        .map(|rest| {
            let value = rest.split(r#"data-value=""#).nth(1).unwrap();
            value[..value.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// Makes the report of the newest run in `cutover`'s journal in every form
/// and checks each against the journal; `name` names the page and its
/// screenshot (in the journal's folder).
pub async fn check_report(cutover: &Cutover, name: &str) -> CheckedReport {
    let page = cutover.dir.join(format!("{name}.html"));
    let (code, _, stderr) = cutover
        .output(&["report", "--html", page.to_str().unwrap()])
        .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, markdown, stderr) = cutover.output(&["report", "-o", "md"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, json, stderr) = cutover.output(&["report", "-o", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&json).unwrap();
    let records: Vec<Value> = {
        let all = cutover.records();
        let start = all.iter().rposition(|r| r["event"] == "started").unwrap();
        all[start..].to_vec()
    };
    let gates: Vec<&Value> = records.iter().filter(|r| r["event"] == "gate").collect();
    assert!(!gates.is_empty(), "the run evaluated no gate");
    assert_eq!(json["samples"].as_array().unwrap().len(), gates.len());
    check_markdown(&markdown, &json);

    let screenshot = cutover.dir.join(format!("{name}.png"));
    let Some(chromium) = crate::browser::chromium() else {
        return CheckedReport {
            json,
            markdown,
            dom: String::new(),
            screenshot,
        };
    };
    let page_text = std::fs::read_to_string(&page).unwrap();
    assert!(
        !page_text.contains("src=")
            && !page_text.contains("href=")
            && !page_text.contains("<script"),
        "the page is self-contained"
    );
    let rendered = crate::browser::render(&chromium, &page, &screenshot, 2400);
    assert!(
        rendered.ink() > 0.02,
        "the page rendered blank: {}",
        screenshot.display()
    );
    for (colour, rgb) in [("blue", [0x1f, 0x6f, 0xd1]), ("green", [0x2a, 0x9d, 0x4b])] {
        let seen = rendered.pixels_like(rgb, 24);
        assert!(
            seen > 100,
            "{colour}'s lines are not on the screenshot ({seen} pixels)"
        );
    }
    let dom = rendered.dom;
    // The charts hold the journaled points, in order.
    for colour in ["blue", "green"] {
        let rates: Vec<f64> = gates
            .iter()
            .map(|g| {
                g["figures"][colour]["requests_per_second"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            points(&dom, &format!("rate-{colour}")),
            rates,
            "{colour}'s rate"
        );
        let success: Vec<f64> = gates
            .iter()
            .filter_map(|g| g["figures"][colour]["success_rate"].as_f64())
            .map(|r| r * 100.0)
            .collect();
        assert_eq!(points(&dom, &format!("success-{colour}")), success);
    }
    let splits: Vec<f64> = json["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["green_percent"].as_f64().unwrap())
        .collect();
    assert_eq!(points(&dom, "split-green"), splits);
    let applied: Vec<f64> = records
        .iter()
        .filter(|r| r["event"] == "applied")
        .map(|r| r["green_percent"].as_f64().unwrap())
        .collect();
    assert!(
        applied.iter().all(|p| splits.contains(p)),
        "{applied:?} in {splits:?}"
    );
    // Every decision is listed: each record but convergences is a row;
    // gate evaluations in a row with one verdict share one, counted.
    let mut listed: BTreeMap<String, u64> = BTreeMap::new();
    for row in dom.split(r#"<tr class="decision" data-event=""#).skip(1) {
        let event = &row[..row.find('"').unwrap()];
        let count = row.split(r#"data-count=""#).nth(1).unwrap();
        let count: u64 = count[..count.find('"').unwrap()].parse().unwrap();
        *listed.entry(event.to_owned()).or_default() += count;
    }
    let mut journaled: BTreeMap<String, u64> = BTreeMap::new();
    for r in records.iter().filter(|r| r["event"] != "converged") {
        *journaled
            .entry(r["event"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(listed, journaled);
    CheckedReport {
        json,
        markdown,
        dom,
        screenshot,
    }
}

/// The Markdown parses (CommonMark with GitHub's tables) into the report's
/// tables, its decisions table one row per decision.
fn check_markdown(markdown: &str, json: &Value) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut tables = Vec::new();
    let mut rows = 0;
    let mut heading = String::new();
    let mut in_heading = false;
    let mut last_heading = String::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                heading.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                last_heading = heading.clone();
            }
            Event::Text(t) if in_heading => heading.push_str(&t),
            Event::Start(Tag::Table(_)) => rows = 0,
            Event::Start(Tag::TableRow) => rows += 1,
            Event::End(TagEnd::Table) => tables.push((last_heading.clone(), rows)),
            _ => {}
        }
    }
    let decisions = json["decisions"].as_array().unwrap().len();
    assert!(
        tables.contains(&("Decisions".to_owned(), decisions)),
        "no Decisions table of {decisions} rows in {tables:?}"
    );
    let samples = json["samples"].as_array().unwrap().len();
    assert!(
        tables.contains(&("Gate evaluations".to_owned(), samples)),
        "{tables:?}"
    );
}
