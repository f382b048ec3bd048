//! Real `crm` processes for multi-instance tests: started with a given environment on a free loopback port,
//! read until they listen, stopped with SIGTERM.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `crm serve`.
pub struct CrmProcess {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Its port.
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// A free loopback port (bound and released; the race with other tests is harmless here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl CrmProcess {
    /// Starts `binary serve` with only `env` (plus PATH) and waits until it listens.
    pub async fn start(binary: &str, env: &HashMap<&str, String>) -> Self {
        let mut command = Command::new(binary);
        command.arg("serve");
        Self::spawn(command, env).await
    }

    /// Like [`CrmProcess::start`], with the process allowed at most `open_files` file descriptors (soft and hard
    /// limit, so that it cannot raise them).
    pub async fn start_with_open_files(binary: &str, env: &HashMap<&str, String>, open_files: u32) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" serve"))
            .arg(binary);
        Self::spawn(command, env).await
    }

    /// Its resident memory in KiB (`VmRSS` of `/proc/<pid>/status`), when the system tells it.
    pub fn resident_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Every line the process has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    async fn spawn(mut command: Command, env: &HashMap<&str, String>) -> Self {
        let port = free_port();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("crm starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&log);
        let started = async {
            while let Ok(Some(line)) = lines.next_line().await {
                let listening = line.contains("listening");
                keep.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(line);
                if listening {
                    return true;
                }
            }
            false
        };
        let listening = tokio::time::timeout(Duration::from_secs(60), started)
            .await
            .unwrap_or(false);
        assert!(
            listening,
            "crm did not start listening: {:?}",
            log.lock().map(|l| l.clone())
        );
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keep.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(line);
            }
        });
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Kills it with SIGKILL (no chance to finish anything) and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops it with SIGTERM and waits.
    pub async fn stop(mut self) {
        self.terminate().await;
    }

    /// Stops it with SIGTERM, waits, and returns everything it logged, to its last line.
    pub async fn stop_and_log(mut self) -> Vec<String> {
        self.terminate().await;
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        self.log()
    }

    async fn terminate(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

impl Drop for CrmProcess {
    /// When a test fails with the process running, its last log lines are printed: they tell what the
    /// server saw, which the test's own assertion cannot.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let start = log.len().saturating_sub(200);
            eprintln!("--- last log lines of crm serve at {} ---", self.base_url);
            for line in &log[start..] {
                eprintln!("{line}");
            }
        }
    }
}

/// A throw-away Redis server (from the `redis-server` binary) on a fixed port, stoppable and restartable.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    binary: String,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `binary` on a free port, keeping nothing on disk.
    pub async fn start(binary: &str) -> Self {
        let mut server = Self {
            port: free_port(),
            binary: binary.to_owned(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (connections drop at once).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    /// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`), asked over a plain RESP exchange.
    pub async fn subscribers(&self, channel: &str) -> i64 {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("Redis accepts a connection");
        let command = format!(
            "*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(command.as_bytes()).await.expect("sent");
        // The answer is `*2`, the channel as a bulk string, then `:<count>`.
        let mut lines = BufReader::new(stream).lines();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
                .await
                .expect("Redis answers within 5 s")
                .expect("readable")
                .expect("a line");
            if let Some(count) = line.strip_prefix(':') {
                return count.parse().expect("a count");
            }
        }
    }
}

/// The environment of one of several `crm serve` processes sharing `database` and `redis`: instance `name`,
/// its own data directory, the given secret key and first admin password, and a Bot API nobody listens on.
pub fn instance_environment(
    database: &crm_testkit_db::TestDatabase,
    redis: &RedisServer,
    name: &str,
    secret_key: &str,
    admin_password: &str,
) -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", database.url.clone()),
        ("REDIS_URL", redis.url()),
        ("SECRET_KEY", secret_key.to_owned()),
        ("CRM_ADMIN_PASSWORD", admin_password.to_owned()),
        ("DATA_DIR", database.dir.path().join(name).display().to_string()),
        ("INSTANCE_ID", name.to_owned()),
        ("TELEGRAM_BOT_API_URL", "http://127.0.0.1:9".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
    ])
}
