//! Inline SVG line charts over a run's time, drawn as text so the page
//! needs no script and no outside asset. Every plotted point is a circle
//! that carries its series and value (`data-series`, `data-value`), so a
//! reader's tooltip and a test can both check what was drawn.

use super::StageSpan;
use std::fmt::Write;

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 210.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;

pub struct Series<'a> {
    /// Shown in the legend and in `data-series` (with the chart's id).
    pub name: &'a str,
    /// CSS class giving the colour (`blue`, `green`, `split`).
    pub class: &'a str,
    /// (seconds since the run began, value).
    pub points: Vec<(f64, f64)>,
    /// Held until the next point (a split), instead of joined straight.
    pub steps: bool,
}

pub struct Chart<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub series: Vec<Series<'a>>,
    /// A gate's limit: drawn dashed, with its label.
    pub threshold: Option<(f64, String)>,
    /// The value axis: from 0 (or from just under the lowest value, for
    /// rates near 100%) to this at least.
    pub y_floor_from_data: bool,
    pub y_at_least: f64,
    pub format: fn(f64) -> String,
    pub duration: f64,
    pub stages: &'a [StageSpan],
}

pub fn render(c: &Chart) -> String {
    let values = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(c.threshold.as_ref().map(|t| t.0));
    let (mut lo, mut hi) = values.fold((f64::MAX, c.y_at_least), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !c.y_floor_from_data || lo == f64::MAX {
        lo = 0.0;
    } else {
        lo -= (hi - lo).max(hi * 0.01) * 0.2;
        lo = lo.max(0.0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    if !c.y_floor_from_data {
        hi *= 1.05;
    }
    // Round numbers on the axis: a step of 1, 2, 2.5 or 5 × 10^k.
    let step = nice_step((hi - lo) / 4.0);
    lo = (lo / step).floor() * step;
    hi = lo + (((hi - lo) / step).ceil().max(1.0)) * step;
    let ticks = ((hi - lo) / step).round() as i32;
    let duration = c.duration.max(1.0);
    let x = |s: f64| LEFT + (s / duration) * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        r#"<svg id="{id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg">"#,
        id = c.id,
        title = escape(c.title),
    );
    for (i, stage) in c.stages.iter().enumerate() {
        let Some(begin) = stage.began_at_seconds else {
            continue;
        };
        let end = c.stages[i + 1..]
            .iter()
            .find_map(|s| s.began_at_seconds)
            .unwrap_or(duration);
        let _ = write!(
            svg,
            r#"<rect class="stage s{}" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}"/><text class="stage-name" x="{:.1}" y="{:.1}">{}</text>"#,
            i % 2,
            x(begin),
            (x(end) - x(begin)).max(0.0),
            HEIGHT - TOP - BOTTOM,
            x(begin) + 4.0,
            TOP + 12.0,
            escape(&stage.name)
        );
    }
    for i in 0..=ticks {
        let v = lo + step * f64::from(i);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            (c.format)(v)
        );
    }
    for i in 0..=5 {
        let s = duration * f64::from(i) / 5.0;
        let _ = write!(
            svg,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(s),
            HEIGHT - 8.0,
            if duration < 60.0 {
                format!("{s:.1}s")
            } else {
                clock(s)
            }
        );
    }
    if let Some((limit, label)) = &c.threshold {
        let _ = write!(
            svg,
            r#"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="threshold-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            y(*limit),
            y(*limit),
            WIDTH - RIGHT - 4.0,
            y(*limit) + 12.0,
            escape(label)
        );
    }
    for s in &c.series {
        let mut path = String::new();
        for (i, (px, py)) in s.points.iter().enumerate() {
            let command = if i == 0 { 'M' } else { 'L' };
            if s.steps && i > 0 {
                let _ = write!(path, "L{:.1},{:.1} ", x(*px), y(s.points[i - 1].1));
            }
            let _ = write!(path, "{command}{:.1},{:.1} ", x(*px), y(*py));
        }
        if let (true, Some(last)) = (s.steps, s.points.last()) {
            let _ = write!(path, "L{:.1},{:.1}", x(duration), y(last.1));
        }
        let _ = write!(
            svg,
            r#"<path class="line {}" d="{}"/>"#,
            s.class,
            path.trim_end()
        );
        for (px, py) in &s.points {
            let _ = write!(
                svg,
                r#"<circle class="point {class}" data-series="{id}-{name}" data-seconds="{px:.1}" data-value="{py}" cx="{:.1}" cy="{:.1}" r="2.5"><title>{name} {} at {}</title></circle>"#,
                x(*px),
                y(*py),
                (c.format)(*py),
                clock(*px),
                class = s.class,
                id = c.id,
                name = s.name,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text made safe for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 1, 2, 2.5 or 5 × 10^k, the smallest at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * magnitude)
}

/// `m:ss` (or `h:mm:ss`) since the run began.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}
