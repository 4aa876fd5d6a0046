//! Composition benchmark: the same messages composed (context → templates →
//! MIME → signed → the bytes sent) with the reuse of what a step's message
//! says to everyone, and with every message rendered whole, turn about in
//! one run. `benches/compose.sh` runs it; see docs/benchmarks.md.
//!
//! ```text
//! bench_compose [--messages 5000] [--rounds 5] [--template news_item] [--dkim]
//! ```
//!
//! Each message has its own person (names with accents and of varied
//! length) and its own outbox id, so its own tracked links. Prints the
//! median microseconds per message of each way and their ratio, and checks
//! that both ways give the same bytes (boundaries masked).

use ambassador::campaign::Campaign;
use ambassador::config::{SecretUse, Settings};
use ambassador::delivery::context::{
    CampaignView, Manager, MessageContext, Organisation, Person, StepView,
};
use ambassador::delivery::{Composer, Preview, Templates};
use ambassador::store::Store;
use chrono::{DateTime, Duration, Utc};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use std::sync::{Arc, RwLock};
use std::time::Instant;

const CAMPAIGN: &str = r#"
slug = "bench"
name = "SOAR for Procurement Professionals"
course_url = "https://train.example.org/course/1"
video_url = "https://train.example.org/video/1"
contact = "ambassador@hospital.example.org"
starts_at = "2020-01-06T14:00:00Z"
due = "14d"
send_window = "always"

[[steps]]
name = "announcement"
at = "0s"
template = "news_item"
"#;

const FIRST: [&str; 8] = [
    "Ann",
    "Zoë",
    "José",
    "Bartholomew",
    "Li",
    "Siobhán",
    "Maximiliana",
    "Ugo",
];
const LAST: [&str; 8] = [
    "Lee",
    "Ångström",
    "Nuñez",
    "O'Brien",
    "Okonkwo-Adeyemi",
    "Ng",
    "Quellenberg",
    "Rossi",
];

struct Args {
    messages: usize,
    rounds: usize,
    template: String,
    dkim: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        messages: 5_000,
        rounds: 5,
        template: "news_item".into(),
        dkim: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--messages" => a.messages = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse()?,
            "--template" => a.template = value()?,
            "--dkim" => a.dkim = true,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::load_with_env(None, std::iter::empty())?;
    settings.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    settings.security.token_key_file = dir.path().join("token.key");
    settings.organisation.name = "Riverside Health".into();
    settings.smtp.from = "SOAR Ambassador <ambassador@hospital.example.org>".into();
    if a.dkim {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let file = dir.path().join("dkim.pem");
        std::fs::write(&file, key.to_pkcs1_pem(LineEnding::LF)?.as_bytes())?;
        settings.smtp.dkim_selector = "bench".into();
        settings.smtp.dkim_domain = "hospital.example.org".into();
        settings.smtp.dkim_key_file = file;
    }
    settings.load_secrets(SecretUse::ALL)?;
    let store = Store::open(&settings.database.url, 1).await?;
    let key = ambassador::tracking::load_or_create_key(&settings.security.token_key_file)?;
    let tracker =
        ambassador::tracking::Tracker::new(key, "https://ambassador.hospital.example.org");
    let composer = |templates: Templates| {
        let shared = Arc::new(RwLock::new(Arc::new(templates)));
        Composer::new(store.clone(), shared, &settings, tracker.clone())
    };
    let reusing = composer(ambassador::app::load_templates(&settings)?)?;
    let whole = composer(ambassador::app::load_templates(&settings)?.without_reuse())?;

    let campaign = Campaign::from_toml(CAMPAIGN, "bench.toml")?;
    let at = campaign.starts_at.with_timezone(&Utc) + Duration::hours(1);
    let previews: Vec<Preview> = (0..a.messages)
        .map(|i| preview(&campaign, &tracker, &a.template, i, at))
        .collect();

    same_bytes(
        &reusing,
        &whole,
        &campaign,
        &previews[..previews.len().min(200)],
    )?;
    let bytes = reusing
        .preview_message(&previews[0], &campaign)?
        .formatted()
        .len();
    let mut times = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        times.0.push(per_message(&whole, &campaign, &previews)?);
        times.1.push(per_message(&reusing, &campaign, &previews)?);
    }
    let (whole_us, reuse_us) = (median(&times.0), median(&times.1));
    println!(
        "template {}, {} messages x {} rounds, {bytes} bytes each, DKIM {}",
        a.template,
        a.messages,
        a.rounds,
        if a.dkim { "on" } else { "off" }
    );
    println!(
        "rendered whole: {whole_us:8.1} us/message (rounds: {:?})",
        rounded(&times.0)
    );
    println!(
        "with reuse:     {reuse_us:8.1} us/message (rounds: {:?})",
        rounded(&times.1)
    );
    println!("reuse / whole:  {:.2}x", reuse_us / whole_us);
    println!("keys cached:    {}", reusing.templates().reused_keys());
    Ok(())
}

/// One person's message, as the worker would compose it (outbox id `i`).
fn preview(
    campaign: &Campaign,
    tracker: &ambassador::tracking::Tracker,
    template: &str,
    i: usize,
    at: DateTime<Utc>,
) -> Preview {
    let (first, last) = (FIRST[i % 8], LAST[(i / 8) % 8]);
    let email = format!(
        "{}.{}{i}@hospital.example.org",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let mut person = Person::new(first, last, &email);
    person.department = "Supply Chain".into();
    person.role = "Buyer".into();
    let outbox_id = i as i64 + 1;
    let due = at + Duration::days(14);
    Preview {
        context: MessageContext {
            organisation: Organisation {
                name: "Riverside Health".into(),
            },
            person,
            campaign: CampaignView::new(campaign, Some(due), at, chrono_tz::America::New_York),
            links: tracker.links(campaign, outbox_id),
            pixel_url: tracker.pixel(outbox_id),
            step: StepView {
                name: "announcement".into(),
            },
            manager: Manager::default(),
            overdue: Vec::new(),
            overdue_count: 0,
        },
        template: template.into(),
        at,
        timing: String::new(),
        sent: false,
    }
}

/// Microseconds per message to compose every preview into the bytes sent.
fn per_message(
    composer: &Composer,
    campaign: &Campaign,
    previews: &[Preview],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut total = 0;
    for p in previews {
        total += composer.preview_message(p, campaign)?.formatted().len();
    }
    let elapsed = started.elapsed();
    assert!(total > 0);
    Ok(elapsed.as_secs_f64() * 1e6 / previews.len() as f64)
}

fn same_bytes(
    a: &Composer,
    b: &Composer,
    campaign: &Campaign,
    previews: &[Preview],
) -> anyhow::Result<()> {
    for p in previews {
        let (x, y) = (
            a.preview_message(p, campaign)?,
            b.preview_message(p, campaign)?,
        );
        anyhow::ensure!(
            masked(&x.formatted()) == masked(&y.formatted()),
            "the two ways differ for {}",
            p.context.person.email
        );
    }
    Ok(())
}

/// Boundary, Message-ID and DKIM signature masked: they differ every time.
fn masked(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("");
    let text = text.replace(boundary, "BOUNDARY");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let headers: Vec<&str> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| {
            !l.starts_with("Message-ID")
                && !l.starts_with("DKIM-Signature")
                && !l.starts_with(' ')
                && !l.starts_with('\t')
        })
        .collect();
    format!("{}\n\n{body}", headers.join("\n"))
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn rounded(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| (v * 10.0).round() / 10.0).collect()
}
