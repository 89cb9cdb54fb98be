//! `chiso up` on an ephemeral port, driven through the real binary.

// Each test file uses its own part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chiso");

pub struct Up {
    child: Child,
    pub url: String,
}

impl Up {
    /// Starts `chiso up` on an ephemeral port and waits for its "up" line.
    pub fn start(data_dir: &Path) -> Up {
        let mut child = Command::new(BIN)
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("CHISO_LOG__FORMAT", "json")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start chiso up");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("chiso is up on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("chiso up announces its address");
        Up { child, url }
    }

    pub fn client(&self, data_dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .args(["--server", &self.url, "--data-dir"])
            .arg(data_dir)
            .env_remove("CHISO_TOKEN")
            .output()
            .expect("run a client command")
    }

    /// A token from `chiso token issue` for the data directory's key.
    pub fn token(data_dir: &Path, roles: &[&str], scope: &str, subject: &str) -> String {
        let mut command = Command::new(BIN);
        command.args(["token", "issue", "--scope", scope, "--subject", subject]);
        for role in roles {
            command.args(["--role", role]);
        }
        let out = command
            .arg("--data-dir")
            .arg(data_dir)
            .output()
            .expect("run chiso token issue");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chiso up did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
