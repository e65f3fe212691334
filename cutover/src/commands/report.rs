//! `cutover report`: the newest run of the journal as Markdown, JSON, YAML
//! or one HTML page ([`crate::report`] builds and renders it).

use crate::engine::EngineError;
use crate::journal;
use crate::outcome::exit;
use crate::output::{Format, Output};
use std::path::Path;

/// Prints (or with `html` writes) the report; exit 0 once it is out.
pub fn report(
    journal_path: &Path,
    html: Option<&Path>,
    format: Format,
    out: &Output,
) -> Result<u8, EngineError> {
    let shown = journal_path.display().to_string();
    if !journal_path.exists() {
        return Err(EngineError::Refused(format!(
            "no journal at {shown}: nothing to report (--journal or CUTOVER_JOURNAL names another)"
        )));
    }
    let records = journal::read_all(journal_path)?;
    let report = crate::report::of(&records, &shown)
        .ok_or_else(|| EngineError::Refused(format!("journal {shown} holds no cutover")))?;
    match (html, format) {
        (Some(file), _) => {
            std::fs::write(file, crate::report::html::render(&report)).map_err(|e| {
                EngineError::Refused(format!("--html {}: cannot write: {e}", file.display()))
            })?;
            eprintln!("report of the run in {shown} written to {}", file.display());
        }
        (None, Format::Human | Format::Md) => {
            print!("{}", crate::report::markdown::render(&report))
        }
        (None, _) => out.document(&report),
    }
    Ok(exit::DONE)
}
