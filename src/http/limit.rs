//! Failed authentications counted per client address, so a flood of wrong
//! passwords or tokens from one address slows only that address: everyone
//! else, and the right password from elsewhere, gets through. Only failures
//! count; a client is refused once it has failed `BURST` times in a row
//! faster than one per `REFILL`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed at once per client.
const BURST: f64 = 10.0;
/// One more failure is allowed after this long.
const REFILL: Duration = Duration::from_secs(6);
/// Above this many clients tracked, the ones with a clean slate are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// Recent failures per client.
#[derive(Default)]
pub struct Failures {
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Failures this client may still make now.
    left: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant) -> Self {
        let earned = now.duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        Self {
            left: (self.left + earned).min(BURST),
            at: now,
        }
    }
}

impl Failures {
    /// How long `client` must wait, when it has used up its failures.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = clients.get(&key(client))?.refilled(now);
        (bucket.left < 1.0).then(|| {
            REFILL
                .mul_f64(1.0 - bucket.left)
                .max(Duration::from_secs(1))
        })
    }

    /// Counts one failure against `client`.
    pub fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() > PRUNE_ABOVE {
            clients.retain(|_, b| b.refilled(now).left < BURST);
        }
        let fresh = Bucket {
            left: BURST,
            at: now,
        };
        let bucket = clients.entry(key(client)).or_insert(fresh);
        *bucket = bucket.refilled(now);
        bucket.left = (bucket.left - 1.0).max(0.0);
    }
}

/// IPv6 clients are counted by their /64, which one host usually owns whole.
fn key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The client's address: the peer, or, when the peer is a configured
/// reverse proxy, the last X-Forwarded-For hop that is not one.
pub fn client_address(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted_proxies: &[IpAddr],
) -> IpAddr {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|hop| !trusted_proxies.contains(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_failing_client_is_blocked() {
        let failures = Failures::default();
        let (flood, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..BURST as usize {
            assert!(failures.blocked(flood).is_none());
            failures.failed(flood);
        }
        assert!(failures.blocked(flood).is_some());
        assert!(failures.blocked(other).is_none());
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert_eq!(key(a), key(b));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut ext = axum::http::Extensions::new();
        ext.insert(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            9,
        ))));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_address(&ext, &headers, &[]), proxy);
        assert_eq!(
            client_address(&ext, &headers, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
