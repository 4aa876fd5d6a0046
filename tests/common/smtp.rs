//! A real SMTP server on loopback for integration tests: it speaks enough
//! ESMTP (no pipelining) for lettre's async transport, captures every
//! message it accepts, and injects faults on demand. On request
//! ([`Relay`]) it offers STARTTLS or implicit TLS with a per-run certificate
//! and requires AUTH PLAIN/LOGIN, recording each connection's [`Event`]s.
//!
//! Tests wait for messages with [`SmtpServer::wait_for`], which wakes on
//! each stored message, so nothing has to sleep. Dropping the server stops
//! the accept loop and every open session with it.

mod faults;
mod relay;
mod session;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mail_parser::MessageParser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use faults::FaultBook;
#[allow(unused_imports)]
pub use faults::{DataHold, FaultCounts, Faults};
#[allow(unused_imports)]
pub use relay::{Event, Relay, TlsMode};
#[allow(unused_imports)]
pub use tls::TestCa;

/// Numbers the server's connections from 1, in the order they were accepted.
pub type ConnectionId = u64;

/// A message the server accepted (or stored before dropping the reply).
#[derive(Clone, Debug)]
pub struct Received {
    /// The connection it came in on; shows whether a pool reused connections.
    pub connection: ConnectionId,
    /// The MAIL FROM reverse-path without angle brackets; empty for `<>`.
    pub from: String,
    /// The RCPT TO addresses the server accepted, in order.
    pub recipients: Vec<String>,
    /// The message as the client meant it: dot-unstuffed, terminator removed.
    pub raw: Vec<u8>,
    /// When its data ended (the terminator arrived): for measuring send rates.
    pub received_at: std::time::Instant,
}

impl Received {
    /// Parses the message with a real MIME parser.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .expect("the server stored a message mail-parser cannot read")
    }

    /// The Message-ID without angle brackets, as mail-parser reports it.
    pub fn message_id(&self) -> Option<String> {
        self.parsed().message_id().map(str::to_owned)
    }

    /// The raw value of the header called `name` (case-insensitive; the last
    /// one if repeated, as mail-parser picks), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = self.parsed();
        let value = parsed.header_raw(name.to_owned())?;
        Some(value.trim().to_owned())
    }

    /// What identifies the message across retries: its Message-ID, or its
    /// bytes when it has none (lettre adds one only when asked).
    fn identity(&self) -> String {
        self.message_id()
            .unwrap_or_else(|| String::from_utf8_lossy(&self.raw).into_owned())
    }
}

/// State shared by the accept loop, every session and the test.
struct Shared {
    faults: Mutex<FaultBook>,
    /// Every stored message, in order; a watch channel so waiters wake.
    received: watch::Sender<Vec<Received>>,
    connections: AtomicU64,
    /// Whether MAIL FROM is answered (true) or held until released.
    gate_open: watch::Sender<bool>,
    /// Sessions waiting at the closed gate.
    held: watch::Sender<usize>,
    /// TLS and AUTH settings (its faults live in `faults`).
    relay: Relay,
    /// What happened on each connection, in order; a watch channel so
    /// waiters wake.
    events: watch::Sender<Vec<(ConnectionId, Event)>>,
}

impl Shared {
    fn faults(&self) -> MutexGuard<'_, FaultBook> {
        self.faults.lock().expect("fault book poisoned")
    }

    fn store(&self, message: Received) {
        self.received.send_modify(|all| all.push(message));
    }

    /// Waits while the gate is closed, counted in `held`.
    async fn pass_gate(&self) {
        let mut gate = self.gate_open.subscribe();
        if *gate.borrow_and_update() {
            return;
        }
        self.held.send_modify(|n| *n += 1);
        let _ = gate.wait_for(|open| *open).await;
        self.held.send_modify(|n| *n -= 1);
    }

    fn record(&self, connection: ConnectionId, event: Event) {
        self.events.send_modify(|all| all.push((connection, event)));
    }

    fn next_connection_id(&self) -> ConnectionId {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The running server. Dropping it shuts it down.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on a free port and starts accepting connections.
    pub async fn start(faults: Faults) -> SmtpServer {
        SmtpServer::start_relay(Relay::new(faults)).await
    }

    /// As [`SmtpServer::start`], with TLS and AUTH as `relay` says.
    pub async fn start_relay(mut relay: Relay) -> SmtpServer {
        let faults = std::mem::take(&mut relay.faults);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("read the bound address");
        let shared = Arc::new(Shared {
            faults: Mutex::new(FaultBook::new(faults)),
            received: watch::Sender::new(Vec::new()),
            connections: AtomicU64::new(0),
            gate_open: watch::Sender::new(true),
            held: watch::Sender::new(0),
            relay,
            events: watch::Sender::new(Vec::new()),
        });
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        SmtpServer {
            addr,
            shared,
            accept_loop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message stored so far, in the order stored.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.received.borrow().clone()
    }

    /// Waits until at least `n` messages have been stored and returns all of
    /// them. Panics, listing what did arrive, if that takes over `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut changes = self.shared.received.subscribe();
        let arrived = tokio::time::timeout(timeout, changes.wait_for(|all| all.len() >= n)).await;
        match arrived {
            Ok(all) => all.expect("the server owns the sender").clone(),
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {n} messages; got {} (last: {:?})",
                self.messages().len(),
                self.messages()
                    .iter()
                    .rev()
                    .take(5)
                    .map(|m| (m.recipients.clone(), m.message_id()))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// From now on, MAIL FROM gets no answer until [`SmtpServer::release`]:
    /// the client's messages stay in flight, as with a stalled relay.
    pub fn hold(&self) {
        self.shared.gate_open.send_replace(false);
    }

    /// Answers the held MAIL FROMs and every later one.
    pub fn release(&self) {
        self.shared.gate_open.send_replace(true);
    }

    /// Waits until at least `n` sessions are held at MAIL FROM.
    pub async fn wait_held(&self, n: usize, timeout: Duration) {
        let mut held = self.shared.held.subscribe();
        let waited = tokio::time::timeout(timeout, held.wait_for(|h| *h >= n)).await;
        assert!(
            waited.is_ok(),
            "timed out after {timeout:?} waiting for {n} held sessions; {} held",
            *self.shared.held.borrow()
        );
    }

    /// Message-IDs stored more than once, sorted.
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for message in self.shared.received.borrow().iter() {
            *seen.entry(message.identity()).or_default() += 1;
        }
        seen.into_iter()
            .filter(|(_, times)| *times > 1)
            .map(|(id, _)| id)
            .collect()
    }

    /// How many times each fault has fired.
    pub fn fault_counts(&self) -> FaultCounts {
        self.shared.faults().counts()
    }

    /// Every connection's events, in the order they happened.
    pub fn events(&self) -> Vec<(ConnectionId, Event)> {
        self.shared.events.borrow().clone()
    }

    /// Waits until an event matching `wanted` has happened, e.g. the server
    /// side of a handshake the client has already given up on. Panics,
    /// listing the events, after `timeout`.
    pub async fn wait_for_event(&self, wanted: impl Fn(&Event) -> bool, timeout: Duration) {
        let mut changes = self.shared.events.subscribe();
        let seen = changes.wait_for(|all| all.iter().any(|(_, event)| wanted(event)));
        if tokio::time::timeout(timeout, seen).await.is_err() {
            panic!("no such event within {timeout:?}: {:?}", self.events());
        }
    }

    /// The events of one connection, in order.
    pub fn transcript(&self, connection: ConnectionId) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|(id, _)| *id == connection)
            .map(|(_, event)| event)
            .collect()
    }

    /// How many connections the server has accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for SmtpServer {
    /// Aborting the accept loop drops its `JoinSet`, which aborts every
    /// session, so no task outlives the test's server.
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Accepts connections and runs one session task per connection, reaping
/// finished sessions so the set does not grow with the test.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = shared.next_connection_id();
                    sessions.spawn(session::serve(stream, id, Arc::clone(&shared)));
                }
                Err(error) => eprintln!("test SMTP server: accept failed: {error}"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}
