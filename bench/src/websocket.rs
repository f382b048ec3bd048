//! The WebSocket figures: 1,000 idle connections to one instance (resident memory per connection, measured on
//! the server's process while the clients live in a child process), and the delay from a webhook's `200` to
//! the moment every connection has received the `new_message`. A connection counts as open once it has its
//! initial chat list (`initial_chats`, or the last chunk of a long one).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::report::resident;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connections opened at once while the clients connect.
const CONNECTING: usize = 16;

fn resident_bytes() -> Option<u64> {
    resident().map(|(now, _)| now)
}

/// What the parent tells the client process.
pub struct ClientPlan {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An admin token (every connection sees every chat).
    pub token: String,
    /// The bot account receiving webhook updates.
    pub account: i64,
    /// Its webhook secret.
    pub secret: String,
    /// Connections to open.
    pub clients: usize,
    /// Messages to time.
    pub rounds: usize,
    /// The first update (and message) id to use; each round takes the next.
    pub first_id: i64,
}

impl ClientPlan {
    /// The arguments that start the client process.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--ws-client".into(),
            self.base.clone(),
            self.token.clone(),
            self.account.to_string(),
            self.secret.clone(),
            self.clients.to_string(),
            self.rounds.to_string(),
            self.first_id.to_string(),
        ]
    }

    /// Reads the plan back from those arguments.
    pub fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let [base, token, account, secret, clients, rounds, first_id] = args else {
            anyhow::bail!("--ws-client takes seven values");
        };
        Ok(Self {
            base: base.clone(),
            token: token.clone(),
            account: account.parse()?,
            secret: secret.clone(),
            clients: clients.parse()?,
            rounds: rounds.parse()?,
            first_id: first_id.parse()?,
        })
    }
}

/// Opens one connection and reads its initial chat list.
async fn open(url: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    loop {
        let frame = next_text(&mut socket).await?;
        if frame["type"] == "initial_chats" || frame["type"] == "initial_chats_end" {
            return Ok(socket);
        }
    }
}

async fn next_text(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("no frame within 30 s")?;
        if let Message::Text(text) = frame.context("closed")?? {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}

/// The client process: opens the connections, says READY, waits for GO, then times `rounds` webhook messages
/// and prints `DELAYS <ms> …` (one figure per round: until the last connection got the message).
pub async fn run_clients(plan: ClientPlan) -> anyhow::Result<()> {
    let _ = rlimit::increase_nofile_limit(u64::try_from(plan.clients * 2 + 256).unwrap_or(u64::MAX));
    let ws_base = plan.base.replacen("http://", "ws://", 1);
    let url = format!("{ws_base}/ws/messages/?token={}", plan.token);
    let opened: Vec<anyhow::Result<Socket>> = futures::stream::iter(0..plan.clients)
        .map(|_| open(&url))
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    let mut sockets = opened.into_iter().collect::<anyhow::Result<Vec<Socket>>>()?;
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    stdin.next_line().await?;
    let http = reqwest::Client::new();
    let mut delays = Vec::with_capacity(plan.rounds);
    for round in 0..plan.rounds {
        let text = format!("round {round}");
        let readers: Vec<_> = sockets
            .drain(..)
            .map(|mut socket| {
                let text = text.clone();
                tokio::spawn(async move {
                    loop {
                        let frame = next_text(&mut socket).await?;
                        if frame["type"] == "new_message" && frame["message"]["text"] == text.as_str() {
                            return anyhow::Ok((socket, Instant::now()));
                        }
                    }
                })
            })
            .collect();
        let id = plan.first_id + i64::try_from(round).unwrap_or(0);
        let update = json!({"update_id": id, "message": {"message_id": id, "date": chrono::Utc::now().timestamp(),
            "chat": {"id": 42, "type": "private", "first_name": "Load"}, "from": {"id": 42, "is_bot": false, "first_name": "Load"},
            "text": text}});
        let response = http
            .post(format!("{}/api/webhook/bot/{}/", plan.base, plan.account))
            .header("X-Telegram-Bot-Api-Secret-Token", &plan.secret)
            .json(&update)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "webhook answered {}",
            response.status()
        );
        let answered = Instant::now();
        let mut last = answered;
        for reader in readers {
            let (socket, received) = reader.await??;
            last = last.max(received);
            sockets.push(socket);
        }
        delays.push(last.saturating_duration_since(answered).as_secs_f64() * 1000.0);
    }
    for socket in &mut sockets {
        let _ = socket.send(Message::Close(None)).await;
    }
    println!(
        "DELAYS {}",
        delays
            .iter()
            .map(|d| format!("{d:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// The parent side: starts the client process, measures this process's memory growth while the connections
/// are idle, then collects the delays; returns (bytes per connection, delays in ms).
pub async fn measure(plan: ClientPlan) -> anyhow::Result<(f64, Vec<f64>)> {
    let clients = plan.clients;
    let before = resident_bytes().context("resident memory is readable on Linux only")?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(plan.args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    while let Some(line) = lines.next_line().await? {
        if line == "READY" {
            break;
        }
    }
    // Let the server settle its per-connection state before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_bytes().context("resident memory")?;
    stdin.write_all(b"GO\n").await?;
    let mut delays = Vec::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(figures) = line.strip_prefix("DELAYS ") {
            delays = figures
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
        }
    }
    let status = child.wait().await?;
    anyhow::ensure!(status.success(), "the client process failed");
    let per_connection = after.saturating_sub(before) as f64 / clients as f64;
    Ok((per_connection, delays))
}
