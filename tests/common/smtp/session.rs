//! One SMTP conversation, from the 220 greeting to QUIT or hang-up.
//!
//! Commands are answered strictly one at a time, which is why the server
//! does not advertise PIPELINING. An envelope lives from MAIL FROM until
//! the message is stored, refused, RSET, or a new EHLO/HELO.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::faults::DataOutcome;
use super::{ConnectionId, Received, Shared};

/// Runs a session until the client quits, the server hangs up on purpose,
/// or the connection fails (a client that vanishes is not a test failure).
pub(super) async fn serve(stream: TcpStream, connection: ConnectionId, shared: Arc<Shared>) {
    let (input, output) = stream.into_split();
    let mut session = Session {
        connection,
        shared,
        input: BufReader::new(input),
        output,
        envelope: None,
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
    input: BufReader<OwnedReadHalf>,
    output: OwnedWriteHalf,
    envelope: Option<Envelope>,
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
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                Ok(Flow::Hangup)
            }
            _ => self.reply("502 5.5.2 Command not implemented").await,
        }
    }

    async fn ehlo(&mut self) -> io::Result<Flow> {
        self.envelope = None;
        self.reply("250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES")
            .await
    }

    async fn mail(&mut self, argument: &str) -> io::Result<Flow> {
        if self.envelope.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command").await;
        }
        let Some(from) = parse_path(argument, "FROM:") else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        if self.shared.faults().on_mail() {
            return Ok(Flow::Hangup);
        }
        self.shared.pass_gate().await;
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
