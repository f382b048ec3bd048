//! A TCP proxy in front of a real server (a database, Redis) that a test can cut (connections reset at once),
//! blackhole (connections stay open but no byte passes either way, as in a partition or when a NAT forgets a
//! connection), and restore.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Blackhole,
    Cut,
}

/// Forwards connections from a local port to `target` until [`FaultProxy::cut`] or [`FaultProxy::blackhole`].
#[derive(Debug)]
pub struct FaultProxy {
    /// Where clients should connect.
    pub local_addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
}

impl FaultProxy {
    /// Starts forwarding from a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Open);
        let mode = Arc::new(mode);
        let state = Arc::clone(&mode);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut changes = state.subscribe();
                let current = *changes.borrow_and_update();
                match current {
                    Mode::Cut => drop(client),
                    // Accepted, then silent: held until the proxy is cut or restored.
                    Mode::Blackhole => {
                        tokio::spawn(async move {
                            let _held = client;
                            let _ = changes.wait_for(|mode| *mode != Mode::Blackhole).await;
                        });
                    }
                    Mode::Open => {
                        tokio::spawn(forward(client, target, changes));
                    }
                }
            }
        });
        Ok(Self { local_addr, mode })
    }

    /// Drops every live connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Stops every byte in both directions without closing anything; new connections are accepted and then
    /// silent too.
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Accepts and forwards connections again. Connections that were blackholed are dropped now, as the far
    /// end would reset them once the path returns.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

/// Copies bytes between `client` and a new connection to `target` while the proxy is open.
async fn forward(client: TcpStream, target: SocketAddr, mut changes: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client, mut server) = (client, server);
    let mode = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        changed = changes.wait_for(|mode| *mode != Mode::Open) => match changed {
            Ok(mode) => *mode,
            Err(_) => return,
        },
    };
    if mode == Mode::Blackhole {
        // Both ends stay open and hear nothing until the proxy is cut or restored.
        let _ = changes.wait_for(|mode| *mode != Mode::Blackhole).await;
    }
}
