//! The accept loop of `serve`. axum::serve has no header-read or idle
//! timeout and no connection cap, so idle sockets could use up the open-file
//! limit and starve everyone. Here each connection is watched: a client gets
//! `header_timeout` from the first byte of a request to finish its headers
//! and `idle_timeout` between requests; at `max_connections` the longest-idle
//! connection is closed to make room (nginx does the same), and accept errors
//! such as EMFILE back off instead of spinning.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `[http]` limits the loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_settings(http: &crate::config::Http) -> Self {
        Self {
            header_timeout: http.header_timeout.as_std(),
            idle_timeout: http.idle_timeout.as_std(),
            max_connections: http.max_connections,
        }
    }
}

/// Accepts until `stop` is cancelled, then closes idle connections at once
/// and lets open requests finish before returning.
pub async fn run(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let registry = Arc::new(Registry::default());
    let tasks = TaskTracker::new();
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = room_then_accept(&listener, &registry, limits.max_connections) => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                backoff.reset();
                let (id, conn) = registry.admit();
                let (router, registry) = (router.clone(), registry.clone());
                tasks.spawn(async move {
                    drive(stream, remote, router, &conn, limits).await;
                    registry.remove(id);
                });
            }
            Err(e) if is_per_connection(&e) => {}
            Err(e) => accept_failed(&e, &registry, &mut backoff, &stop).await,
        }
    }
    drop(listener);
    registry.close_all();
    tasks.close();
    tasks.wait().await;
}

/// At the cap, closes the longest-idle connection and waits for it to go
/// (new clients wait in the listen queue meanwhile), then accepts.
async fn room_then_accept(
    listener: &TcpListener,
    registry: &Registry,
    max: usize,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    while registry.len() >= max {
        registry.evict_idle();
        registry.closed.notified().await;
    }
    listener.accept().await
}

/// Errors that concern one would-be connection only, not the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// Out of file descriptors or memory: free an idle connection and wait a
/// little (longer each time) before accepting again, instead of spinning.
async fn accept_failed(
    e: &std::io::Error,
    registry: &Registry,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) {
    let freed = registry.evict_idle();
    let pause = backoff.next();
    tracing::warn!(error = %e, freed_idle_connection = freed, pause_ms = pause.as_millis() as u64,
        "accept error; pausing (raise LimitNOFILE or lower http.max_connections if this repeats)");
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(pause) => {}
    }
}

/// 10 ms, doubling up to 1 s; back to 10 ms after a successful accept.
#[derive(Default)]
struct Backoff(Option<Duration>);

impl Backoff {
    fn next(&mut self) -> Duration {
        let next = self.0.map_or(Duration::from_millis(10), |d| {
            (d * 2).min(Duration::from_secs(1))
        });
        self.0 = Some(next);
        next
    }
    fn reset(&mut self) {
        self.0 = None;
    }
}

/// Serves one connection until the client leaves, a timeout passes, or it
/// is asked to close (eviction, shutdown): idle at that moment, it is
/// dropped; in the middle of a request, the request finishes first.
async fn drive(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    conn: &Arc<Conn>,
    limits: Limits,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let service = request_service(router, remote, conn.clone());
    let http = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(http);
    let mut closing = false;
    loop {
        let wake = conn.deadline(limits);
        tokio::select! {
            done = http.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = conn.changed.notified() => {}
            _ = tokio::time::sleep_until(wake) => {
                if conn.expired(limits) {
                    tracing::debug!(%remote, "connection timed out");
                    return;
                }
            }
            _ = conn.close.cancelled(), if !closing => {
                if !conn.busy() {
                    return;
                }
                closing = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The router as hyper calls it, with the client's address for the
/// handlers (per-client limits) and the connection marked busy meanwhile.
fn request_service(
    router: Router,
    remote: SocketAddr,
    conn: Arc<Conn>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        let busy = Busy::begin(conn.clone());
        let router = router.clone();
        async move {
            let response = tower::ServiceExt::oneshot(router, request).await;
            drop(busy);
            response
        }
    })
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request under way (fresh, or between keep-alive requests).
    Idle,
    /// A request's first bytes arrived; its headers are not complete yet.
    Head,
    /// This many requests are being answered.
    Busy(usize),
}

struct Activity {
    phase: Phase,
    /// When the phase began (Idle: the last byte written or read).
    since: Instant,
}

/// One open connection as the registry and its task see it.
struct Conn {
    activity: Mutex<Activity>,
    /// Cancelled to ask the connection to close (eviction or shutdown).
    close: CancellationToken,
    /// Told when a request starts arriving, which brings its deadline forward.
    changed: tokio::sync::Notify,
}

impl Conn {
    fn new() -> Self {
        Self {
            activity: Mutex::new(Activity {
                phase: Phase::Idle,
                since: Instant::now(),
            }),
            close: CancellationToken::new(),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the current phase runs out (busy: just a time to look again).
    fn deadline(&self, limits: Limits) -> Instant {
        let a = self.activity();
        match a.phase {
            Phase::Idle => a.since + limits.idle_timeout,
            Phase::Head => a.since + limits.header_timeout,
            Phase::Busy(_) => Instant::now() + limits.idle_timeout,
        }
    }

    fn expired(&self, limits: Limits) -> bool {
        !matches!(self.activity().phase, Phase::Busy(_)) && self.deadline(limits) <= Instant::now()
    }

    fn busy(&self) -> bool {
        matches!(self.activity().phase, Phase::Busy(_))
    }

    /// Idle since when, if it is not answering a request.
    fn idle_since(&self) -> Option<Instant> {
        let a = self.activity();
        let evictable = !matches!(a.phase, Phase::Busy(_)) && !self.close.is_cancelled();
        evictable.then_some(a.since)
    }

    fn saw_bytes(&self, read: bool) {
        let mut a = self.activity();
        if a.phase == Phase::Idle {
            a.since = Instant::now();
            if read {
                a.phase = Phase::Head;
                self.changed.notify_one();
            }
        }
    }
}

/// Marks a connection busy while a request is answered, even if the
/// answer is dropped half-way.
struct Busy(Arc<Conn>);

impl Busy {
    fn begin(conn: Arc<Conn>) -> Self {
        {
            let mut a = conn.activity();
            a.phase = match a.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            };
        }
        Self(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut a = self.0.activity();
        a.phase = match a.phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle,
        };
        a.since = Instant::now();
    }
}

/// The socket, telling its connection when bytes move.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.saw_bytes(true);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.conn.saw_bytes(false);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections (closing ones included, until their socket is
/// gone), so the loop can count them and close idle ones.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Told whenever a connection is gone.
    closed: tokio::sync::Notify,
}

impl Registry {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.open().len()
    }

    fn admit(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new());
        self.open().insert(id, conn.clone());
        (id, conn)
    }

    /// Asks the longest-idle connection to close; false when every one is
    /// answering a request or closing already.
    fn evict_idle(&self) -> bool {
        let open = self.open();
        let oldest = open
            .values()
            .filter_map(|c| c.idle_since().map(|since| (since, c)))
            .min_by_key(|(since, _)| *since);
        let Some((_, conn)) = oldest else {
            return false;
        };
        conn.close.cancel();
        true
    }

    fn remove(&self, id: u64) {
        self.open().remove(&id);
        self.closed.notify_one();
    }

    fn close_all(&self) {
        for conn in self.open().values() {
            conn.close.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connection_is_the_one_closed_and_never_a_busy_one() {
        let registry = Registry::default();
        let (_, first) = registry.admit();
        let (_, second) = registry.admit();
        let _busy = Busy::begin(first.clone());
        assert!(registry.evict_idle());
        assert!(
            second.close.is_cancelled(),
            "the idle one is asked to close"
        );
        assert!(!first.close.is_cancelled(), "the busy one is kept");
        assert!(!registry.evict_idle(), "nothing else is idle");
        assert_eq!(registry.len(), 2, "a closing connection still counts");
    }

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next(), Duration::from_millis(10));
        assert_eq!(b.next(), Duration::from_millis(20));
        for _ in 0..20 {
            b.next();
        }
        assert_eq!(b.next(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(10));
    }
}
