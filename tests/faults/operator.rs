//! The operator's side: `cutover run` and every `resume` as real
//! processes (JSON output kept, to find any record printed but not in the
//! journal), and the operator's mishaps injected between them: the run
//! killed, its journal's disk full or read-only, a second operator.

use crate::inject::Injector;
use crate::schedule::{Fault, Planned};
use crate::watch::served_split;
use e2e::{bin, TOKEN};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

pub struct Operator {
    injector: Arc<Injector>,
    journal: PathBuf,
    plan: PathBuf,
    /// The engine process now (run or resume).
    current: Option<Child>,
    /// Every record the engine processes printed (`--output json`).
    pub printed: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Each engine process: its command and how it ended.
    pub processes: Vec<(String, Option<i32>)>,
    spawned: usize,
}

impl Operator {
    pub fn new(injector: Arc<Injector>) -> Operator {
        let journal = injector.topology.journal();
        let plan = injector.topology.plan.clone();
        Operator {
            injector,
            journal,
            plan,
            current: None,
            printed: Arc::default(),
            readers: Vec::new(),
            processes: Vec::new(),
            spawned: 0,
        }
    }

    fn stderr_file(&self, n: usize) -> PathBuf {
        self.injector
            .topology
            .work
            .path()
            .join(format!("cutover-{n}.stderr"))
    }

    fn command(&self, args: &[&str], journal: &std::path::Path, user: &str) -> Command {
        let mut c = Command::new(bin("cutover"));
        c.args(args)
            .arg("--journal")
            .arg(journal)
            .args(["--output", "json"])
            .env("GATEWAY_ADMIN_TOKEN", TOKEN)
            .env("USER", user)
            .env("RUST_LOG", "warn")
            .env_remove("CUTOVER_FAILPOINT")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Starts the engine (`run PLAN` or `resume`) in the background.
    pub fn start(&mut self, args: &[&str]) {
        self.spawned += 1;
        let stderr = std::fs::File::create(self.stderr_file(self.spawned)).unwrap();
        let mut child = self
            .command(args, &self.journal, "operator-a")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let printed = self.printed.clone();
        self.readers.push(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                printed.lock().unwrap().push(line);
            }
        }));
        self.processes.push((args.join(" "), None));
        self.current = Some(child);
    }

    pub fn start_run(&mut self) {
        let plan = self.plan.display().to_string();
        self.start(&["run", &plan]);
    }

    /// Waits for the current engine process to end, `timeout` at most.
    async fn wait_current(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.current.as_mut()?;
        let code = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => return None,
        };
        self.current = None;
        self.processes.last_mut().unwrap().1 = Some(code.unwrap_or(-9));
        code.or(Some(-9))
    }

    async fn kill_current(&mut self) {
        if let Some(child) = self.current.as_mut() {
            let _ = child.start_kill();
        }
        self.wait_current(Duration::from_secs(10)).await;
    }

    fn alive(&mut self) -> bool {
        self.current
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn stderr_of_current(&self) -> String {
        std::fs::read_to_string(self.stderr_file(self.spawned)).unwrap_or_default()
    }

    /// The operator's lane: each mishap at its time, while the run lives;
    /// then the wait for the run's end. Returns the last exit code.
    pub async fn lane(
        &mut self,
        faults: Vec<Planned>,
        limit: Duration,
        finished: Arc<AtomicBool>,
    ) -> Option<i32> {
        for planned in faults {
            self.injector.until(&planned).await;
            if !self.alive() {
                break; // the run ended (or died): nothing left to disturb
            }
            let (ok, detail) = match planned.fault {
                Fault::CutoverKilled { down_ms } => self.killed(down_ms).await,
                Fault::JournalDiskFull => self.disk_full().await,
                Fault::JournalReadOnly => self.read_only().await,
                Fault::SecondOperator => self.second_operator().await,
                _ => unreachable!("infrastructure faults run in their own lanes"),
            };
            self.injector.note(&planned.fault, ok, detail);
        }
        let left = limit.saturating_sub(self.injector.t0.elapsed());
        let code = self.wait_current(left.max(Duration::from_secs(1))).await;
        finished.store(true, Ordering::Relaxed);
        if code.is_none() {
            println!("the run did not end within {limit:?}; stopping it");
            self.kill_current().await;
        }
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        code
    }

    async fn killed(&mut self, down_ms: u64) -> (bool, String) {
        self.kill_current().await;
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        self.start(&["resume"]);
        (true, format!("kill -9, resumed after {down_ms} ms"))
    }

    /// The split the journal's newest run last wrote (applied or rolled
    /// back to), or 0 before any step.
    fn journaled_split(&self) -> f64 {
        let records = cutover::journal::read_all(&self.journal).unwrap_or_default();
        cutover::engine::last_written(cutover::journal::last_run(&records))
            .map_or(0.0, |(percent, _)| percent)
    }

    /// Every replica in service serves `split` (they may take up to the
    /// convergence timeout to agree).
    async fn fleet_serves(&self, split: f64) -> Result<(), String> {
        let serves =
            |s: &serde_json::Value| s["routes"]["web"]["green_percent"].as_f64() == Some(split);
        if self
            .injector
            .every_replica(crate::topology::CONVERGENCE_TIMEOUT, serves)
            .await
        {
            return Ok(());
        }
        let client = reqwest::Client::new();
        let urls = self.injector.topology.admin_urls();
        let mut served = Vec::new();
        for i in self.injector.topology.ring.in_service() {
            served.push(served_split(&client, &urls[i]).await);
        }
        Err(format!(
            "the replicas serve {served:?}, the journal says {split}"
        ))
    }

    /// Checks how a run that lost its journal ended: exit 1, `expect` in
    /// what it said, the split the journal last recorded still served.
    async fn stopped_cleanly(
        &self,
        code: Option<i32>,
        stderr: &str,
        expect: &str,
    ) -> (bool, String) {
        let split = self.journaled_split();
        let serving = self.fleet_serves(split).await;
        let said = stderr
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim();
        let ok = code == Some(1) && stderr.contains(expect) && serving.is_ok();
        let detail = format!(
            "exit {code:?}, said {said:?}; split {}",
            match serving {
                Ok(()) => format!("{split}% as journaled"),
                Err(e) => e,
            }
        );
        (ok, detail)
    }

    async fn disk_full(&mut self) -> (bool, String) {
        let injector = self.injector.clone();
        let Some(fs) = &injector.topology.journal_fs else {
            return (false, "no tmpfs".into());
        };
        let filler = fs.fill();
        // The run notices at its next record (a gate, every second, once
        // the room kept ahead of a split write is used up).
        let code = self.wait_current(Duration::from_secs(90)).await;
        let stderr = self.stderr_of_current();
        let (ok, detail) = self
            .stopped_cleanly(code, &stderr, "No space left on device")
            .await;
        std::fs::remove_file(filler).unwrap();
        if code.is_none() {
            self.kill_current().await;
        }
        self.start(&["resume"]);
        (ok, format!("{detail}; space freed, resumed"))
    }

    async fn read_only(&mut self) -> (bool, String) {
        let injector = self.injector.clone();
        let Some(fs) = &injector.topology.journal_fs else {
            return (false, "no tmpfs".into());
        };
        self.kill_current().await;
        fs.remount("ro");
        let out = self
            .command(&["resume"], &self.journal, "operator-a")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let (ok, detail) = self
            .stopped_cleanly(out.status.code(), &stderr, "Read-only file system")
            .await;
        fs.remount("rw");
        self.start(&["resume"]);
        (
            ok,
            format!(
                "engine killed, resume on a read-only journal: {detail}; remounted rw, resumed"
            ),
        )
    }

    /// Another operator starts the plan with a journal of their own, then
    /// with the live one: both refused (exit 3), nothing journaled.
    async fn second_operator(&mut self) -> (bool, String) {
        let plan = self.plan.display().to_string();
        let other = self
            .injector
            .topology
            .work
            .path()
            .join("other-operator.jsonl");
        let own = self
            .command(&["run", &plan], &other, "operator-b")
            .output()
            .await
            .unwrap();
        let same = self
            .command(&["run", &plan], &self.journal, "operator-b")
            .output()
            .await
            .unwrap();
        let journaled = std::fs::read_to_string(&other).unwrap_or_default();
        let said = |o: &std::process::Output| {
            let text = String::from_utf8_lossy(&o.stderr);
            text.lines().last().unwrap_or("").trim().to_owned()
        };
        let ok = own.status.code() == Some(3)
            && said(&own).contains("lock is held")
            && journaled.is_empty()
            && same.status.code() == Some(3)
            && said(&same).contains("has not ended");
        (
            ok,
            format!(
                "own journal: exit {:?} {:?}; the live journal: exit {:?} {:?}",
                own.status.code(),
                said(&own),
                same.status.code(),
                said(&same)
            ),
        )
    }
}
