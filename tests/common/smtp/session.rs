//! One SMTP conversation, from the 220 greeting to QUIT or hang-up.
//!
//! Commands are answered strictly one at a time, which is why the server
//! does not advertise PIPELINING. An envelope lives from MAIL FROM until
//! the message is stored, refused, RSET, or a new EHLO/HELO. STARTTLS and
//! AUTH follow RFC 3207 and RFC 4954 as far as lettre needs them.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::faults::DataOutcome;
use super::relay::{self, Event, TlsMode};
use super::{ConnectionId, Received, Shared};

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// Runs a session until the client quits, the server hangs up on purpose,
/// or the connection fails (a client that vanishes is not a test failure).
pub(super) async fn serve(tcp: TcpStream, connection: ConnectionId, shared: Arc<Shared>) {
    let implicit = shared.relay.mode() == Some(TlsMode::Implicit);
    let stream: Stream = match shared.relay.acceptor() {
        Some(acceptor) if implicit => match acceptor.accept(tcp).await {
            Ok(tls) => Box::new(tls),
            Err(error) => return shared.record(connection, Event::TlsFailed(error.to_string())),
        },
        _ => Box::new(tcp),
    };
    shared.record(
        connection,
        Event::Connected {
            encrypted: implicit,
        },
    );
    let (input, output) = tokio::io::split(stream);
    let mut session = Session {
        connection,
        shared,
        input: BufReader::new(input),
        output,
        envelope: None,
        encrypted: implicit,
        authenticated: false,
    };
    let _ = session.run().await;
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Hangup,
}

/// Sender and recipients of the transaction in progress.
struct Envelope {
    from: String,
    recipients: Vec<String>,
}

struct Session {
    connection: ConnectionId,
    shared: Arc<Shared>,
    input: BufReader<ReadHalf<Stream>>,
    output: WriteHalf<Stream>,
    envelope: Option<Envelope>,
    encrypted: bool,
    authenticated: bool,
}

impl Session {
    async fn run(&mut self) -> io::Result<()> {
        self.reply("220 localhost ESMTP ambassador test server")
            .await?;
        while let Some(line) = self.read_line().await? {
            let command = String::from_utf8_lossy(&line);
            if let Flow::Hangup = self.dispatch(command.trim_end()).await? {
                break;
            }
        }
        Ok(())
    }

    async fn dispatch(&mut self, command: &str) -> io::Result<Flow> {
        let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.ehlo().await,
            "HELO" => {
                self.envelope = None;
                self.reply("250 localhost").await
            }
            "MAIL" => self.mail(argument).await,
            "RCPT" => self.rcpt(argument).await,
            "DATA" => self.data().await,
            "RSET" => {
                self.envelope = None;
                self.reply("250 2.0.0 OK").await
            }
            "NOOP" => self.reply("250 2.0.0 OK").await,
            "STARTTLS" => self.starttls().await,
            "AUTH" => self.auth(argument).await,
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                Ok(Flow::Hangup)
            }
            _ => self.reply("502 5.5.2 Command not implemented").await,
        }
    }

    async fn ehlo(&mut self) -> io::Result<Flow> {
        self.envelope = None;
        let mut lines = String::from("250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
        if self.shared.relay.mode() == Some(TlsMode::Starttls) && !self.encrypted {
            lines.push_str("250-STARTTLS\r\n");
        }
        if let Some(login) = &self.shared.relay.login {
            lines.push_str(&format!("250-AUTH {}\r\n", login.mechanisms.join(" ")));
        }
        lines.push_str("250 ENHANCEDSTATUSCODES");
        self.reply(&lines).await
    }

    async fn mail(&mut self, argument: &str) -> io::Result<Flow> {
        if self.envelope.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command").await;
        }
        let Some(from) = parse_path(argument, "FROM:") else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        if self.shared.relay.login.is_some() && !self.authenticated {
            return self.reply("530 5.7.0 Authentication required").await;
        }
        if self.shared.faults().on_mail() {
            return Ok(Flow::Hangup);
        }
        self.shared.pass_gate().await;
        let (encrypted, authenticated) = (self.encrypted, self.authenticated);
        self.record(Event::Mail {
            encrypted,
            authenticated,
        });
        self.envelope = Some(Envelope {
            from,
            recipients: Vec::new(),
        });
        self.reply("250 2.1.0 OK").await
    }

    async fn rcpt(&mut self, argument: &str) -> io::Result<Flow> {
        if self.envelope.is_none() {
            return self.reply("503 5.5.1 Need MAIL before RCPT").await;
        }
        let Some(recipient) = parse_path(argument, "TO:") else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if self.shared.faults().on_rcpt(&recipient) {
            return self.reply("550 5.1.1 mailbox unavailable").await;
        }
        if let Some(envelope) = self.envelope.as_mut() {
            envelope.recipients.push(recipient);
        }
        self.reply("250 2.1.5 OK").await
    }

    async fn data(&mut self) -> io::Result<Flow> {
        let Some(envelope) = self.envelope.take_if(|e| !e.recipients.is_empty()) else {
            return self.reply("503 5.5.1 Need RCPT before DATA").await;
        };
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let Some(raw) = self.read_data().await? else {
            return Ok(Flow::Hangup);
        };
        let received_at = std::time::Instant::now();
        let hold = self.shared.faults().data_hold();
        if let Some(hold) = hold {
            hold.pass().await;
        }
        let message = Received {
            connection: self.connection,
            from: envelope.from,
            recipients: envelope.recipients,
            raw,
            received_at,
        };
        let outcome = self.shared.faults().on_data(&message.identity());
        match outcome {
            DataOutcome::Accept => {
                self.shared.store(message);
                self.reply("250 2.0.0 OK queued").await
            }
            DataOutcome::TempFail => self.reply("451 4.3.0 try again later").await,
            DataOutcome::StoreThenDrop => {
                self.shared.store(message);
                Ok(Flow::Hangup)
            }
        }
    }

    /// Reads message data up to the lone "." line, removing the dot the
    /// client doubled at the start of any line. `None` if the client left.
    async fn read_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut raw = Vec::new();
        while let Some(line) = self.read_line().await? {
            if line == b".\r\n" || line == b".\n" {
                return Ok(Some(raw));
            }
            let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
            raw.extend_from_slice(unstuffed);
        }
        Ok(None)
    }

    fn record(&self, event: Event) {
        self.shared.record(self.connection, event);
    }

    /// Answers 220, then swaps the plain stream for TLS. Anything the client
    /// sent early is discarded, as RFC 3207 asks.
    async fn starttls(&mut self) -> io::Result<Flow> {
        let offered = self.shared.relay.mode() == Some(TlsMode::Starttls) && !self.encrypted;
        let Some(acceptor) = self.shared.relay.acceptor().filter(|_| offered) else {
            return self.reply("502 5.5.1 STARTTLS not offered").await;
        };
        self.reply("220 2.0.0 Ready to start TLS").await?;
        let (detached_input, detached_output) = tokio::io::split(detached());
        let input = std::mem::replace(&mut self.input, BufReader::new(detached_input));
        let output = std::mem::replace(&mut self.output, detached_output);
        let plain = input.into_inner().unsplit(output);
        let tls: Stream = match acceptor.accept(plain).await {
            Ok(tls) => Box::new(tls),
            Err(error) => {
                self.record(Event::TlsFailed(error.to_string()));
                return Ok(Flow::Hangup);
            }
        };
        self.record(Event::StartTls);
        let (input, output) = tokio::io::split(tls);
        (self.input, self.output) = (BufReader::new(input), output);
        (self.encrypted, self.authenticated, self.envelope) = (true, false, None);
        Ok(Flow::Continue)
    }

    /// AUTH PLAIN (with or without an initial response) or AUTH LOGIN.
    async fn auth(&mut self, argument: &str) -> io::Result<Flow> {
        let Some(login) = self.shared.relay.login.clone() else {
            return self.reply("502 5.5.1 AUTH not offered").await;
        };
        if self.authenticated {
            return self.reply("503 5.5.1 Already authenticated").await;
        }
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        let mechanism = mechanism.to_ascii_uppercase();
        if !login.offers(&mechanism) {
            return self
                .reply("504 5.5.4 Unrecognized authentication type")
                .await;
        }
        let Some((user, password)) = self.auth_exchange(&mechanism, initial).await? else {
            return Ok(Flow::Hangup);
        };
        let accepted = login.matches(&user, &password);
        let encrypted = self.encrypted;
        self.record(Event::Auth {
            mechanism,
            encrypted,
            accepted,
        });
        if !accepted {
            return self
                .reply("535 5.7.8 Authentication credentials invalid")
                .await;
        }
        self.authenticated = true;
        self.reply("235 2.7.0 Authentication successful").await
    }

    /// The user and password the client sent; `None` if it left.
    async fn auth_exchange(
        &mut self,
        mechanism: &str,
        initial: &str,
    ) -> io::Result<Option<(String, String)>> {
        if mechanism == "PLAIN" {
            let response = match initial.trim() {
                "" => self.challenge("334 ").await?,
                given => Some(given.to_owned()),
            };
            return Ok(response.map(|r| relay::decode_plain(&r)));
        }
        let Some(user) = self.challenge("334 VXNlcm5hbWU6").await? else {
            return Ok(None);
        };
        let Some(password) = self.challenge("334 UGFzc3dvcmQ6").await? else {
            return Ok(None);
        };
        Ok(Some((relay::decode(&user), relay::decode(&password))))
    }

    /// Sends a 334 challenge and reads the client's answer line.
    async fn challenge(&mut self, prompt: &str) -> io::Result<Option<String>> {
        self.reply(prompt).await?;
        let line = self.read_line().await?;
        Ok(line.map(|l| String::from_utf8_lossy(&l).trim().to_owned()))
    }

    /// One line including its line ending, or `None` at end of stream.
    async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let read = self.input.read_until(b'\n', &mut line).await?;
        Ok((read > 0).then_some(line))
    }

    async fn reply(&mut self, text: &str) -> io::Result<Flow> {
        self.output
            .write_all(format!("{text}\r\n").as_bytes())
            .await?;
        Ok(Flow::Continue)
    }
}

/// A stream attached to nothing, held while the real one is upgraded.
fn detached() -> Stream {
    Box::new(tokio::io::duplex(1).0)
}

/// Extracts the address from `FROM:<a@b> PARAM=…` or `TO:<a@b>`, with the
/// keyword matched case-insensitively. `<>` gives an empty address.
fn parse_path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (address, _parameters) = path.split_once('>')?;
    Some(address.to_owned())
}
