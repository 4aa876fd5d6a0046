//! The real binary, as tests run it: one-shot commands and `serve` processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `ambassador --config CONFIG ARGS…`, with RUST_LOG cleared.
pub fn ambassador(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ambassador"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a one-shot command and fails the test with its stderr if it fails.
pub fn run_ok(config: &Path, args: &[&str]) {
    let out = ambassador(config, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `serve`, logging to `log`.
pub fn serve(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    ambassador(config, &["serve"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and waits; true when the process exited with 0.
pub fn terminate(child: &mut Child) -> bool {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    sent.success() && child.wait().unwrap().success()
}

/// A deployment on disk for process tests: a config file for `db_url` and
/// the SMTP server on `smtp_port` (plus `extra` TOML), a roster of `people`
/// in Procurement imported through the CLI, and a one-step campaign that
/// started in the past, applied through the CLI. Returns the config path.
pub fn deploy(
    dir: &Path,
    db_url: &str,
    smtp_port: u16,
    people: usize,
    extra: &str,
) -> std::path::PathBuf {
    let config = dir.join("ambassador.toml");
    let key = dir.join("token.key");
    let text = format!(
        "[database]\nurl = \"{db_url}\"\n[smtp]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
         from = \"Ambassador <ambassador@hospital.example.org>\"\n[http]\nbind = \"127.0.0.1:0\"\n[security]\ntoken_key_file = \"{}\"\n{extra}",
        key.display()
    );
    std::fs::write(&config, text).unwrap();
    let mut csv = String::from("Email,First Name,Department\n");
    for i in 0..people {
        csv.push_str(&format!("p{i}@hospital.example.org,P{i},Procurement\n"));
    }
    std::fs::write(dir.join("roster.csv"), csv).unwrap();
    let campaign = "slug = \"rollout\"\nname = \"Rollout\"\ncourse_url = \"https://train.example.org/c\"\n\
                    contact = \"ambassador@hospital.example.org\"\nstarts_at = \"2020-01-01T00:00:00Z\"\ndue = \"3650d\"\n\
                    send_window = \"always\"\n[[steps]]\nname = \"announcement\"\nat = \"0s\"\ntemplate = \"news_item\"\n";
    std::fs::write(dir.join("campaign.toml"), campaign).unwrap();
    run_ok(
        &config,
        &["roster", "import", dir.join("roster.csv").to_str().unwrap()],
    );
    run_ok(
        &config,
        &[
            "campaign",
            "apply",
            dir.join("campaign.toml").to_str().unwrap(),
        ],
    );
    config
}

/// A config file in `dir` for one-shot commands against the database,
/// tracking key, SMTP server and report recipients of an in-process
/// [`super::app::TestApp`], so a test can set history up in-process (the
/// manual clock, planning ticks) and drive it through the real binary.
pub fn config_for_app(dir: &Path, t: &super::app::TestApp) -> std::path::PathBuf {
    let config = dir.join("ambassador.toml");
    let recipients: Vec<String> = t
        .app
        .settings
        .report
        .recipients
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect();
    let text = format!(
        "[database]\nurl = \"{}\"\n[security]\ntoken_key_file = \"{}\"\n\
         [smtp]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"Ambassador <ambassador@hospital.example.org>\"\n\
         [report]\nrecipients = [{}]\n",
        t.db.url,
        t.app.settings.security.token_key_file.display(),
        t.smtp.port(),
        recipients.join(", ")
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Runs a one-shot command, fails the test with its stderr if it fails,
/// and returns its standard output.
pub fn stdout_of(config: &Path, args: &[&str]) -> String {
    let out = ambassador(config, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the output is UTF-8")
}

/// A `serve` started with its stderr (JSON log lines) read on a thread, and
/// the address its HTTP listener took.
pub struct Served {
    pub child: Child,
    pub address: std::net::SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Served {
    /// `serve` under `ulimit -n open_files` (a shell sets it, then execs the
    /// binary), once its listener is bound.
    pub fn start_with_open_files(config: &Path, open_files: u32) -> Self {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ambassador"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("RUST_LOG");
        Self::start(cmd)
    }

    /// `serve` with `config`, once its listener is bound.
    pub fn start_with(config: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ambassador"));
        cmd.arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("RUST_LOG");
        Self::start(cmd)
    }

    fn start(mut cmd: Command) -> Self {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("HTTP listening") {
                    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let _ = found.send(json["address"].as_str().unwrap().parse().unwrap());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let address = address
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not listen; log: {:?}", log.lock().unwrap()));
        Self {
            child,
            address,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The log lines so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// A failed test must not leave a daemon behind.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
