//! One `chronik-server` process of a test: started with a config file, its stderr kept per start,
//! killed with SIGKILL by PID (like `kill -9`), and its logs searched for panics. The single broker
//! and every cluster node are built on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

pub struct ServerProcess {
    /// Where the stderr files go.
    dir: PathBuf,
    /// Names the process in messages ("broker", "node 2").
    label: String,
    child: Option<Child>,
    /// Processes started so far; each writes its own stderr file.
    starts: u32,
}

impl ServerProcess {
    pub fn new(dir: PathBuf, label: impl Into<String>) -> ServerProcess {
        ServerProcess { dir, label: label.into(), child: None, starts: 0 }
    }

    fn stderr_path(&self, start: u32) -> PathBuf {
        self.dir.join(format!("stderr-{start}.log"))
    }

    /// The stderr of the current (or last) process.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path(self.starts)).unwrap_or_default()
    }

    /// The last `lines` lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let all = self.stderr();
        let v: Vec<&str> = all.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts `chronik-server start --config <config>` (log level from `CHRONIK_TEST_LOG`, default info).
    pub fn spawn(&mut self, config: &Path) -> Result<()> {
        self.starts += 1;
        let stderr = std::fs::File::create(self.stderr_path(self.starts))?;
        let child = Command::new(env!("CARGO_BIN_EXE_chronik-server"))
            .arg("start")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", std::env::var("CHRONIK_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {}", self.label))?;
        self.child = Some(child);
        Ok(())
    }

    /// How the process ended, if it did.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.as_mut().map(Child::try_wait).transpose()?.flatten())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (by PID) and reap, like `kill -9`.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().with_context(|| format!("kill -9 of {}", self.label))?;
            child.wait()?;
        }
        Ok(())
    }

    /// Every stderr line of every process started here that reports a panic.
    pub fn panics(&self) -> Vec<String> {
        (1..=self.starts)
            .flat_map(|n| std::fs::read_to_string(self.stderr_path(n)).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| l.contains("panicked"))
            .map(|l| format!("{}: {l}", self.label))
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
