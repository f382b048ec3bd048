//! A running grammers sender pool over a [`DbSession`]: the client to invoke requests with, the raw update
//! channel, and the runner task that drives the network. Dropping it stops the runner.

use std::sync::Arc;

use grammers_client::Client;
use grammers_mtsender::{ConnectionParams, SenderPool, SenderPoolFatHandle};
use grammers_session::updates::UpdatesLike;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::session::DbSession;

/// How long a runner may take to quit on its own before it is aborted.
const QUIT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A sender pool whose runner is spawned on the current tokio runtime.
pub struct Pool {
    /// The client sharing the pool.
    pub client: Client,
    /// The pool handle (with the session it runs over).
    pub handle: SenderPoolFatHandle,
    updates: Option<mpsc::Receiver<UpdatesLike>>,
    runner: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    /// Starts a pool over `session`; connections open on the first request.
    pub fn start(session: Arc<DbSession>, api_id: i32, params: ConnectionParams) -> Self {
        let pool = SenderPool::with_configuration(session, api_id, params);
        let client = Client::new(pool.handle.clone());
        let runner = tokio::spawn(pool.runner.run());
        Self {
            client,
            handle: pool.handle,
            updates: Some(pool.updates),
            runner: std::sync::Mutex::new(Some(runner)),
        }
    }

    /// The raw update channel (only once).
    pub fn take_updates(&mut self) -> Option<mpsc::Receiver<UpdatesLike>> {
        self.updates.take()
    }

    /// Stops the runner and waits until it has let go of the session.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    /// Stops the runner and waits until it has closed its connections and let go of the session; later calls
    /// return at once.
    pub async fn stop(&self) {
        self.handle.quit();
        let runner = self
            .runner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut runner) = runner {
            // The runner only sees the request to quit between network operations; one stuck on a dead socket
            // is aborted, which closes the socket.
            if tokio::time::timeout(QUIT_GRACE, &mut runner).await.is_err() {
                runner.abort();
                // A runner that panicked or was aborted has stopped all the same.
                let _ = runner.await;
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.handle.quit();
    }
}
