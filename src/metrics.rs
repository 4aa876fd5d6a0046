//! Prometheus metrics. Counters and histograms live in process; gauges that
//! describe shared state (outbox by status, events by kind) are read from the
//! database at scrape time, so every instance reports the same truth.

use crate::store::Store;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The metrics of one process.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub send_seconds: HistogramVec,
    messages: IntGaugeVec,
    events: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("ambassador".into()), None).expect("a valid prefix");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )
        .expect("valid metric");
        let send_seconds = HistogramVec::new(
            HistogramOpts::new("send_seconds", "Time to hand one message to the relay")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            &["outcome"],
        )
        .expect("valid metric");
        let messages = IntGaugeVec::new(
            Opts::new("messages", "Outbox messages by status"),
            &["status"],
        )
        .expect("valid metric");
        let events = IntGaugeVec::new(
            Opts::new("events", "Tracking events by kind and requester class"),
            &["kind", "class"],
        )
        .expect("valid metric");
        for m in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(send_seconds.clone()),
            Box::new(messages.clone()),
            Box::new(events.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Self {
            registry,
            http_requests,
            send_seconds,
            messages,
            events,
        }
    }

    /// The text exposition, with database gauges refreshed.
    pub async fn render(&self, store: &Store) -> anyhow::Result<String> {
        let c = store.outbox_counts(None).await?;
        for (status, n) in [
            ("pending", c.pending),
            ("sending", c.sending),
            ("sent", c.sent),
            ("failed", c.failed),
            ("undeliverable", c.undeliverable),
            ("cancelled", c.cancelled),
            ("skipped", c.skipped),
        ] {
            self.messages.with_label_values(&[status]).set(n);
        }
        for e in store.event_counts().await? {
            self.events
                .with_label_values(&[e.kind.as_str(), e.ua_class.as_str()])
                .set(e.n);
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
