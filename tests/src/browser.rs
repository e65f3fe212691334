//! A real browser for the pages people look at: Debian's Chromium,
//! headless, started as the tool README says (no background networking:
//! this machine's network is closed). `scripts/setup.sh` installs it for
//! the tests; outside CI a machine without it skips with a printed reason.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium's path, or `None` (printed) where it is not installed and the
/// run is not CI's; under CI a missing browser fails the test.
pub fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "chromium is missing: scripts/setup.sh installs it for the tests"
    );
    println!("SKIPPED: /usr/bin/chromium is absent (apt-get install chromium)");
    None
}

fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// What the browser made of a page: its DOM after parsing, and a
/// screenshot of its first `height` pixels at 1000 px wide.
pub struct Rendered {
    pub dom: String,
    /// RGBA rows of the screenshot.
    pub pixels: Vec<[u8; 4]>,
}

impl Rendered {
    /// Share of the screenshot's pixels that are not (near) white.
    pub fn ink(&self) -> f64 {
        let inked = self
            .pixels
            .iter()
            .filter(|p| p[0] < 240 || p[1] < 240 || p[2] < 240)
            .count();
        inked as f64 / self.pixels.len().max(1) as f64
    }

    /// Pixels within `tolerance` of an `#rrggbb` colour.
    pub fn pixels_like(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance))
            .count()
    }
}

/// Opens `page` (a file) in headless Chromium; the screenshot is kept at
/// `screenshot`.
pub fn render(chromium: &Path, page: &Path, screenshot: &Path, height: u32) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let dom = headless(chromium, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = headless(chromium, profile.path())
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("--window-size=1000,{height}"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success() && screenshot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(screenshot).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2], if channels == 4 { p[3] } else { 255 }])
        .collect();
    Rendered {
        dom: String::from_utf8_lossy(&dom.stdout).into_owned(),
        pixels,
    }
}
