//! The built `crm` binary as a user meets it: `--help` for every command, `config print-default`, a first
//! start with no configuration at all, a graceful stop on SIGTERM, `migrate` and `create-admin`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CRM: &str = env!("CARGO_BIN_EXE_crm");

fn crm(dir: &Path) -> Command {
    let mut command = Command::new(CRM);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn output(mut command: Command) -> (bool, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("finishes")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Reads the server's log until it listens; returns every line read.
async fn wait_until_listening(child: &mut Child) -> Vec<String> {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let reading = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("listening");
            seen.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("the server starts within 30 s");
    // Keep draining so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

async fn terminate(child: Child) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stops within 30 s")
        .unwrap()
        .status
}

#[tokio::test]
async fn help_documents_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = output({
        let mut c = crm(dir.path());
        c.arg("--help");
        c
    })
    .await;
    assert!(ok, "{text}");
    for command in ["serve", "migrate", "create-admin", "config"] {
        assert!(text.contains(command), "`{command}` missing from --help:\n{text}");
    }
    for args in [
        &["serve", "--help"][..],
        &["migrate", "--help"],
        &["create-admin", "--help"],
        &["config", "--help"],
        &["config", "print-default", "--help"],
    ] {
        let mut command = crm(dir.path());
        command.args(args);
        let (ok, text) = output(command).await;
        assert!(ok && text.contains("Usage: crm"), "{args:?}:\n{text}");
    }
    let mut command = crm(dir.path());
    command.args(["serve", "--help"]);
    let (_, text) = output(command).await;
    for variable in [
        "DATABASE_URL",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "DB_NAME",
        "REDIS_HOST",
        "DJANGO_LOG_LEVEL",
        "LISTEN_ADDR",
        "DATA_DIR",
    ] {
        assert!(
            text.contains(variable),
            "{variable} not documented in serve --help"
        );
    }
    let mut command = crm(dir.path());
    command.args(["config", "print-default"]);
    let (ok, text) = output(command).await;
    assert!(ok);
    assert!(text.lines().any(|l| l == "LISTEN_ADDR=127.0.0.1:8000"), "{text}");
    assert!(text.lines().any(|l| l == "# SECRET_KEY="), "{text}");
}

#[tokio::test]
async fn a_fresh_start_with_no_configuration_serves_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = crm(dir.path());
    command
        .arg("serve")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = command.spawn().unwrap();
    let log = wait_until_listening(&mut child).await;
    let password_line = log
        .iter()
        .find(|l| l.contains("created the first admin"))
        .expect("the admin password is logged");
    let password = password_line
        .split("password=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(password.len(), 20);

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let health: serde_json::Value = client
        .get(format!("{base}/api/health/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let token: serde_json::Value = client
        .post(format!("{base}/api/api-token-auth/"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("a token").to_owned();
    let status = client
        .get(format!("{base}/api/system/status/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), reqwest::StatusCode::OK);

    assert!(dir.path().join("data/crm.sqlite3").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        // Readable by the server's user alone: the key, the database (and its WAL) and the data directory.
        assert_eq!(mode("data/secret_key"), 0o600);
        assert_eq!(mode("data/crm.sqlite3"), 0o600);
        assert_eq!(mode("data/crm.sqlite3-wal"), 0o600);
        assert_eq!(mode("data"), 0o700);
    }
    let exit = terminate(child).await;
    assert!(exit.success(), "SIGTERM ends the server cleanly: {exit:?}");

    // A second start keeps the admin, its password and the generated key.
    let mut command = crm(dir.path());
    command
        .arg("serve")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = command.spawn().unwrap();
    let log = wait_until_listening(&mut child).await;
    assert!(
        !log.iter().any(|l| l.contains("created the first admin")),
        "no second admin"
    );
    let again = client
        .post(format!("{base}/api/api-token-auth/"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::OK);
    let old_token = client
        .get(format!("{base}/api/auth/me/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_token.status(),
        reqwest::StatusCode::OK,
        "tokens survive a restart"
    );
    assert!(terminate(child).await.success());
}

#[tokio::test]
async fn migrate_and_create_admin_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = crm(dir.path());
    command.arg("migrate");
    let (ok, text) = output(command).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("applying migration 1/"),
        "progress is shown:\n{text}"
    );
    assert!(text.contains("0 migrations pending"), "{text}");

    let mut command = crm(dir.path());
    command.args(["create-admin", "--username", "boss", "--no-input"]);
    let (ok, text) = output(command).await;
    assert!(!ok && text.contains("no password given"), "{text}");

    // Settings may come from a .env file in the working directory, as with the predecessor.
    std::fs::write(dir.path().join(".env"), "CRM_ADMIN_PASSWORD=boss-password-1\n").unwrap();
    let mut command = crm(dir.path());
    command.args(["createsuperuser", "--username", "boss", "--no-input"]);
    let (ok, text) = output(command).await;
    assert!(ok && text.contains("admin `boss` is ready"), "{text}");

    let mut command = crm(dir.path());
    command
        .args(["create-admin", "--username", "boss", "--no-input"])
        .env("CRM_ADMIN_PASSWORD", "boss-password-2");
    let (ok, text) = output(command).await;
    assert!(!ok && text.contains("already exists"), "{text}");

    // The server starts with that admin and creates no other.
    let port = free_port();
    let mut command = crm(dir.path());
    command
        .arg("serve")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = command.spawn().unwrap();
    let log = wait_until_listening(&mut child).await;
    assert!(!log.iter().any(|l| l.contains("created the first admin")));
    let login = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/api-token-auth/"))
        .json(&serde_json::json!({"username": "boss", "password": "boss-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::OK);
    assert!(terminate(child).await.success());
}

#[tokio::test]
async fn a_production_database_without_secret_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = crm(dir.path());
    command
        .arg("serve")
        .env("DB_NAME", "crm")
        .env("DB_HOST", "127.0.0.1")
        .env("DEBUG", "False");
    let (ok, text) = output(command).await;
    assert!(!ok);
    assert!(text.contains("SECRET_KEY is not set"), "{text}");

    let mut command = crm(dir.path());
    command.arg("serve").env("DEBUG", "sometimes");
    let (ok, text) = output(command).await;
    assert!(
        !ok && text.contains("DEBUG"),
        "an unparsable DEBUG is an error, not truthy:\n{text}"
    );
}

#[tokio::test]
async fn accounts_can_be_listed_started_and_stopped_from_the_command_line() {
    const KEY: &str = "command-line-secret-key-long-enough";
    let dir = tempfile::tempdir().unwrap();
    let with_key = |mut command: Command| {
        command.env("SECRET_KEY", KEY);
        command
    };
    let mut command = crm(dir.path());
    command.arg("migrate");
    let (ok, text) = output(with_key(command)).await;
    assert!(ok, "{text}");

    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("data/crm.sqlite3").display()
    );
    let store = crm_store::Store::connect(
        &url,
        &crm_store::connect::PoolSettings::default(),
        crm_core::secrets::SecretBox::new(KEY, &[]),
    )
    .await
    .unwrap();
    let account = crm_store::repo::personal::upsert(
        &store,
        crm_store::repo::personal::NewPersonal {
            name: "Support phone".into(),
            phone_number: "+491701234567".into(),
            api_id: 1,
            api_hash: crm_core::secrets::Sensitive("0123456789abcdef0123456789abcdef".into()),
            include_groups: false,
            include_channels: false,
        },
    )
    .await
    .unwrap();
    use crm_core::personal::SessionVault;
    crm_store::repo::personal::StoredSessions::new(store.clone())
        .save(account.id, b"session".to_vec())
        .await
        .unwrap();

    for args in [
        &["accounts", "--help"][..],
        &["accounts", "list", "--help"],
        &["accounts", "start", "--help"],
        &["accounts", "stop", "--help"],
        &["accounts", "restart", "--help"],
        &["accounts", "sync", "--help"],
    ] {
        let mut command = crm(dir.path());
        command.args(args);
        let (ok, text) = output(command).await;
        assert!(ok && text.contains("Usage: crm accounts"), "{args:?}:\n{text}");
    }

    let mut command = crm(dir.path());
    command.args(["accounts", "start", &account.id.to_string()]);
    let (ok, text) = output(with_key(command)).await;
    assert!(ok && text.contains("started"), "{text}");
    let row = crm_store::repo::accounts::find(&store, account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.enabled, "start records the intent the servers follow");

    let mut command = crm(dir.path());
    command.args(["accounts", "list"]);
    let (ok, text) = output(with_key(command)).await;
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("Support phone"))
        .expect("the account is listed");
    assert!(line.contains("personal") && line.contains("yes"), "{line}");

    let mut command = crm(dir.path());
    command.args(["accounts", "stop", "--all"]);
    let (ok, text) = output(with_key(command)).await;
    assert!(ok && text.contains("stopped"), "{text}");
    let row = crm_store::repo::accounts::find(&store, account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!row.enabled);
    assert_eq!(row.status, crm_core::account::AccountStatus::Stopped);

    let mut command = crm(dir.path());
    command.args(["accounts", "stop", "999"]);
    let (ok, text) = output(with_key(command)).await;
    assert!(!ok && text.contains("no personal account 999"), "{text}");

    let mut command = crm(dir.path());
    command.args(["accounts", "sync"]);
    let (ok, text) = output(with_key(command)).await;
    assert!(!ok && text.contains("without Redis"), "{text}");
}
