//! Serving HTTP on a TCP listener with the limits a server on the open internet needs: a client must send its
//! request headers within a deadline, and a kept-alive connection that sends nothing for as long is closed
//! (slowloris and idle floods); the number of open connections, WebSockets included, is capped below the
//! process's file-descriptor limit, so that a flood is refused at the door instead of leaving the process
//! unable to open its database or its files. Request bodies are bounded by the API's own timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

/// File descriptors kept free for everything but client connections (database pool, media files, Redis,
/// Telegram connections).
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers, and the longest a kept-alive connection may stay silent.
    pub header_timeout: Duration,
    /// Open client connections at most; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Time in-flight requests get to finish after the stop signal.
    pub shutdown_grace: Duration,
}

impl ServeLimits {
    /// `configured` connections, or with 0 as many as the descriptor limit allows after
    /// [`RESERVED_DESCRIPTORS`]; never more than that limit allows.
    pub fn connections_allowed(configured: usize, descriptor_limit: Option<u64>) -> usize {
        let allowed_by_descriptors = descriptor_limit.map(|limit| {
            let free = limit.saturating_sub(RESERVED_DESCRIPTORS).max(limit / 2).max(1);
            usize::try_from(free).unwrap_or(usize::MAX)
        });
        match (configured, allowed_by_descriptors) {
            (0, Some(allowed)) => allowed,
            (0, None) => 10_000,
            (configured, Some(allowed)) => configured.min(allowed),
            (configured, None) => configured,
        }
    }
}

/// A client connection that holds its place under the connection cap for as long as it is open, through an
/// upgrade to a WebSocket too.
struct Counted {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `service` on `listener` (HTTP/1.1 with upgrades) until `shutdown` completes, then lets in-flight
/// requests finish for up to the grace period. Each request carries the peer's [`ConnectInfo`].
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, stop_signal) = watch::channel(false);
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory for a moment: connections already open go on; pause
                    // accepting rather than spin on the error.
                    tracing::warn!(%error, "cannot accept connections now");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused,
                    "connection limit reached; new connections are closed at once"
                );
            }
            drop(stream);
            continue;
        };
        // Small writes (WebSocket frames, short answers) go out at once.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Counted {
            stream,
            _place: place,
        });
        let service = service.clone();
        let handler = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            service.clone().oneshot(request.map(Body::new))
        });
        let connection = http.serve_connection(io, handler).with_upgrades();
        let mut stop_signal = stop_signal.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let stop = async move {
                let _ = stop_signal.wait_for(|stop| *stop).await;
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop => {
                    // Finish the request in flight, then close instead of waiting for the next one.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.send_replace(true);
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some requests did not finish within the grace period");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_under_the_descriptor_limit() {
        assert_eq!(ServeLimits::connections_allowed(0, Some(1024)), 896);
        assert_eq!(ServeLimits::connections_allowed(0, Some(256)), 128);
        assert_eq!(ServeLimits::connections_allowed(0, Some(100)), 50);
        assert_eq!(ServeLimits::connections_allowed(5_000, Some(1024)), 896);
        assert_eq!(ServeLimits::connections_allowed(500, Some(1024)), 500);
        assert_eq!(ServeLimits::connections_allowed(0, None), 10_000);
    }
}
