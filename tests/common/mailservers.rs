//! Real mail servers on loopback for the bounce tests, each started by the
//! test in its own temporary folder with its own configuration and port:
//! - Dovecot (Debian's dovecot-imapd): IMAP with implicit TLS (a server
//!   certificate from a CA made for the run), one passwd-file user,
//!   Maildir;
//! - a private Postfix instance (`postfix -c DIR start`, its own queue and
//!   data folders): accepts every message on a loopback port, delivers to
//!   the known staff addresses by discarding them, relays some to a
//!   loopback port where nothing listens (a temporary failure given up at
//!   once: a DSN with status 4.4.1), bounces every other local address
//!   ("unknown user", 5.1.1) with a genuine DSN, and delivers mail for the
//!   bounce addresses into the Dovecot user's Maildir.
//!
//! Both need root (Postfix's master, Dovecot's privilege separation) and
//! the Debian packages; [`MailServers::start`] says why when it cannot run.

use super::smtp::TestCa;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The uid and gid that own the Maildir: Postfix's virtual(8) delivers as
/// them and Dovecot's userdb gives them to the IMAP process.
const MAIL_UID: u32 = 65534;

/// The bounce mailbox's login.
pub const IMAP_USER: &str = "bounces";
pub const IMAP_PASSWORD: &str = "correct horse battery staple";

/// The domain the Postfix instance is final for; unknown users here bounce.
pub const STAFF_DOMAIN: &str = "staff.test";
/// The VERP return path's domain, delivered to the bounce mailbox.
pub const BOUNCE_DOMAIN: &str = "bounces.test";

/// Dovecot and Postfix, stopped when dropped.
pub struct MailServers {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub smtp_port: u16,
    /// The CA that signed Dovecot's certificate, in PEM, as `bounces.ca_file`.
    pub ca_file: PathBuf,
    /// A file holding [`IMAP_PASSWORD`], as `bounces.imap_password_file`.
    pub password_file: PathBuf,
    dovecot: Option<Child>,
    postfix_conf: Option<PathBuf>,
}

impl MailServers {
    /// Starts both, delivering `known` local parts of [`STAFF_DOMAIN`],
    /// failing `unreachable` ones temporarily (connection refused, given
    /// up at once, so each gives a DSN with status 4.4.1) and bouncing the
    /// rest (5.1.1), and mail to `bounce*@BOUNCE_DOMAIN` and to
    /// `sender_local*@sender_domain` into the bounce mailbox. `Err` says
    /// why they cannot run here.
    pub fn start(
        known: &[&str],
        unreachable: &[&str],
        sender_local: &str,
        sender_domain: &str,
    ) -> Result<Self, String> {
        for (binary, package) in [
            ("/usr/sbin/dovecot", "dovecot-imapd"),
            ("/usr/sbin/postfix", "postfix"),
        ] {
            if !Path::new(binary).exists() {
                return Err(format!("{binary} is missing (Debian package {package})"));
            }
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("Postfix and Dovecot need root to start".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        set_mode(dir.path(), 0o755);
        let mut servers = MailServers {
            imap_port: free_port(),
            smtp_port: free_port(),
            ca_file: dir.path().join("ca.pem"),
            password_file: dir.path().join("imap-password"),
            dir,
            dovecot: None,
            postfix_conf: None,
        };
        let maildir = servers.maildir();
        std::fs::create_dir_all(&maildir).map_err(|e| e.to_string())?;
        chown_tree(&servers.dir.path().join("mail"));
        servers.start_dovecot()?;
        servers.start_postfix(known, unreachable, sender_local, sender_domain)?;
        Ok(servers)
    }

    /// The bounce user's Maildir (INBOX; folders are `.NAME` inside it).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(IMAP_USER).join("Maildir")
    }

    /// How many messages a folder holds on disk ("INBOX" or a folder name).
    pub fn count(&self, folder: &str) -> usize {
        self.files(folder).len()
    }

    /// The messages of a folder, as the Maildir holds them.
    pub fn files(&self, folder: &str) -> Vec<PathBuf> {
        let base = if folder == "INBOX" {
            self.maildir()
        } else {
            self.maildir().join(format!(".{folder}"))
        };
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(base.join(sub)) {
                files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
        files.sort();
        files
    }

    /// Waits until the INBOX holds `n` messages (Postfix delivers
    /// asynchronously); fails with Postfix's log after `timeout`.
    pub fn wait_for_inbox(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count("INBOX") < n {
            assert!(
                Instant::now() < deadline,
                "the bounce mailbox holds {} message(s), not {n}; Postfix's log:\n{}",
                self.count("INBOX"),
                std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_dovecot(&mut self) -> Result<(), String> {
        let d = self.dir.path().join("dovecot");
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        set_mode(&d, 0o755);
        let ca = TestCa::generate("bounce-mailbox-ca");
        std::fs::write(&self.ca_file, ca.pem()).map_err(|e| e.to_string())?;
        let (cert, key) = ca.server_pem("test bounce mailbox");
        std::fs::write(d.join("cert.pem"), cert).map_err(|e| e.to_string())?;
        std::fs::write(d.join("key.pem"), key).map_err(|e| e.to_string())?;
        set_mode(&d.join("key.pem"), 0o600);
        std::fs::write(
            d.join("users"),
            format!("{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(&self.password_file, format!("{IMAP_PASSWORD}\n"))
            .map_err(|e| e.to_string())?;
        let mail = self.dir.path().join("mail");
        let config = format!(
            "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {MAIL_UID}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={mail}/%u
}}
mail_location = maildir:{mail}/%u/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
",
            d = d.display(),
            mail = mail.display(),
            port = self.imap_port,
        );
        let conf = d.join("dovecot.conf");
        std::fs::write(&conf, config).map_err(|e| e.to_string())?;
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dovecot: {e}"))?;
        self.dovecot = Some(child);
        wait_listening(self.imap_port, &d.join("dovecot.log"), "Dovecot")
    }

    fn start_postfix(
        &mut self,
        known: &[&str],
        unreachable: &[&str],
        sender_local: &str,
        sender_domain: &str,
    ) -> Result<(), String> {
        let p = self.dir.path().join("postfix");
        let conf = p.join("conf");
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir_all(p.join(sub)).map_err(|e| e.to_string())?;
        }
        set_mode(&p, 0o755);
        let (postfix_uid, postfix_gid) = user_ids("postfix")?;
        std::os::unix::fs::chown(p.join("data"), Some(postfix_uid), Some(postfix_gid))
            .map_err(|e| e.to_string())?;
        let log = self.dir.path().join("postfix.log");
        let dot = |s: &str| s.replace('.', "\\.");
        std::fs::write(
            conf.join("vmailbox"),
            format!(
                "/^bounce(\\+.*)?@{}$/ {IMAP_USER}/Maildir/\n/^{}(\\+.*)?@{}$/ {IMAP_USER}/Maildir/\n",
                dot(BOUNCE_DOMAIN),
                dot(sender_local),
                dot(sender_domain),
            ),
        )
        .map_err(|e| e.to_string())?;
        let alternatives =
            |locals: &[&str]| locals.iter().map(|k| dot(k)).collect::<Vec<_>>().join("|");
        std::fs::write(
            conf.join("transport"),
            format!(
                "/^({})@{domain}$/ discard:delivered\n/^({})@{domain}$/ smtp:[127.0.0.1]:{closed}\n",
                alternatives(known),
                alternatives(unreachable),
                domain = dot(STAFF_DOMAIN),
                closed = free_port(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {p}/queue
data_directory = {p}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.{STAFF_DOMAIN}
mydomain = {STAFF_DOMAIN}
myorigin = {STAFF_DOMAIN}
mydestination = {STAFF_DOMAIN}
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {BOUNCE_DOMAIN}, {sender_domain}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = regexp:{p}/conf/vmailbox
virtual_uid_maps = static:{MAIL_UID}
virtual_gid_maps = static:{MAIL_UID}
virtual_minimum_uid = 100
transport_maps = regexp:{p}/conf/transport
recipient_delimiter = +
maillog_file = {log}
maillog_file_prefixes = {root}
smtputf8_enable = no
biff = no
relayhost =
append_dot_mydomain = no
# A temporary failure is given up at once: the DSN comes now, not in days.
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
delay_warning_time = 0
",
            p = p.display(),
            mail = self.dir.path().join("mail").display(),
            log = log.display(),
            root = self.dir.path().display(),
        );
        std::fs::write(conf.join("main.cf"), main).map_err(|e| e.to_string())?;
        // No chroot: the queue is in a temporary folder, not /var/spool.
        let master = format!(
            "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
",
            port = self.smtp_port
        );
        std::fs::write(conf.join("master.cf"), master).map_err(|e| e.to_string())?;
        let postfix = |action: &str| {
            Command::new("/usr/sbin/postfix")
                .arg("-c")
                .arg(&conf)
                .arg(action)
                .stdin(Stdio::null())
                .output()
        };
        let check = postfix("check").map_err(|e| format!("cannot run postfix: {e}"))?;
        let start = postfix("start").map_err(|e| format!("cannot run postfix: {e}"))?;
        self.postfix_conf = Some(conf.clone());
        if !start.status.success() {
            return Err(format!(
                "postfix -c {} start failed: {}{}\n{}",
                conf.display(),
                String::from_utf8_lossy(&check.stderr),
                String::from_utf8_lossy(&start.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        wait_listening(self.smtp_port, &log, "Postfix")
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        if let Some(conf) = &self.postfix_conf {
            let _ = Command::new("/usr/sbin/postfix")
                .arg("-c")
                .arg(conf)
                .arg("stop")
                .stdin(Stdio::null())
                .output();
        }
        if let Some(mut child) = self.dovecot.take() {
            // SAFETY: kill has no memory preconditions; the pid is our child's.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on the port; the server's
/// log in the error when it never does.
fn wait_listening(port: u16, log: &Path, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{name} did not listen on 127.0.0.1:{port} within 20 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Gives a folder and everything in it to [`MAIL_UID`].
fn chown_tree(path: &Path) {
    let _ = std::os::unix::fs::chown(path, Some(MAIL_UID), Some(MAIL_UID));
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            chown_tree(&entry.path());
        }
    }
}

/// A system user's uid and gid (from /etc/passwd).
fn user_ids(name: &str) -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| format!("no system user {name:?} (is the postfix package installed?)"))
}
