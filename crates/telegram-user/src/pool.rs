//! A running grammers sender pool over a [`DbSession`]: the client, the raw update channel, the runner task that
//! drives the network, and the one bounded path every request to Telegram goes through. Dropping it stops the
//! runner.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use grammers_client::Client;
use grammers_mtsender::{InvocationError, SenderPool, SenderPoolFatHandle};
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::gateway::GatewaySettings;
use crate::session::DbSession;

/// How long a runner may take to quit on its own before it is aborted.
const QUIT_GRACE: Duration = Duration::from_secs(3);

/// How long calls may wait for Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One request and its answer (grammers' own retry included).
    pub request: Duration,
    /// A whole file upload or download (each chunk of a download is bounded by `request` as well).
    pub transfer: Duration,
}

/// A sender pool whose runner is spawned on the current tokio runtime.
pub struct Pool {
    /// The client sharing the pool; requests go through [`Pool::invoke`], which bounds them.
    pub client: Client,
    /// The pool handle (with the session it runs over).
    pub handle: SenderPoolFatHandle,
    /// The bounds of calls made over this pool.
    pub timeouts: Timeouts,
    updates: Option<mpsc::Receiver<UpdatesLike>>,
    runner: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    /// Starts a pool over `session` with the connection parameters and timeouts of `settings`; connections
    /// open on the first request.
    pub fn start(session: Arc<DbSession>, api_id: i32, settings: &GatewaySettings) -> Self {
        let pool = SenderPool::with_configuration(session, api_id, settings.connection_params());
        let client = Client::new(pool.handle.clone());
        let runner = tokio::spawn(pool.runner.run());
        Self {
            client,
            handle: pool.handle,
            timeouts: settings.timeouts(),
            updates: Some(pool.updates),
            runner: std::sync::Mutex::new(Some(runner)),
        }
    }

    /// Invokes `request`, giving up when Telegram has not answered within the request timeout. Giving up only
    /// drops the wait: the request may still have been written to the connection and carried out.
    pub async fn invoke<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, InvocationError> {
        bounded(self.timeouts.request, self.client.invoke(request)).await
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

/// The failure of a call Telegram did not finish within `limit`: an I/O timeout, so it is handled like any
/// other lost connection (a network error, a transient send failure).
pub fn timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("Telegram did not answer within {limit:?}"),
    )
}

/// Runs `call`, failing with [`timed_out`] once `limit` has passed.
pub async fn bounded<T, E: From<io::Error>>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(timed_out(limit).into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn a_call_that_outlasts_its_limit_fails_as_a_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, InvocationError>(())
        };
        let error = bounded(Duration::from_millis(10), slow).await.unwrap_err();
        match error {
            InvocationError::Io(io) => assert_eq!(io.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        let quick = async { Ok::<_, io::Error>(5) };
        assert_eq!(bounded(Duration::from_secs(1), quick).await.unwrap(), 5);
    }
}
