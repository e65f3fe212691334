//! `access_log:`: a line for every request and TCP connection.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// A file (appended to; reopened on SIGUSR1, after logrotate renamed
    /// it), or `-` for standard output.
    pub path: String,
    #[serde(default)]
    pub format: AccessLogFormat,
    /// Share of requests logged (0 < sample ≤ 1).
    #[serde(default = "one")]
    pub sample: f64,
    /// Log the query string with the path (off: queries carry tokens).
    #[serde(default)]
    pub include_query: bool,
    /// Lines waiting for the writer at most; past it lines are dropped
    /// (counted), never a request held up.
    #[serde(default = "default_buffer")]
    pub buffer_lines: usize,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// One JSON object a line.
    #[default]
    Json,
    /// nginx's and Apache's `combined`, then `key=value` fields.
    Combined,
}

fn one() -> f64 {
    1.0
}

fn default_buffer() -> usize {
    16 * 1024
}

impl AccessLogConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.path.trim().is_empty() {
            out.push("access_log.path: give a file, or - for standard output".into());
        }
        if !(self.sample > 0.0 && self.sample <= 1.0) {
            out.push(format!(
                "access_log.sample: {} must be above 0 and at most 1 (1 logs every request)",
                self.sample
            ));
        }
        if self.buffer_lines == 0 {
            out.push("access_log.buffer_lines: must be at least 1".into());
        }
        out
    }
}
