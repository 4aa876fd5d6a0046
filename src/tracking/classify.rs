//! Who fetched a pixel or followed a link: a person, a mail provider's image
//! proxy, or a security scanner. The user agent is reduced to this class and
//! then discarded.

/// The class of a requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UaClass {
    Human,
    /// Image proxies: Gmail, Yahoo, Apple Mail Privacy Protection, Outlook.
    Proxy,
    /// Link scanners: Safe Links, Proofpoint, Mimecast, HEAD requests, instant hits.
    Scanner,
}

impl UaClass {
    pub fn as_str(self) -> &'static str {
        match self {
            UaClass::Human => "human",
            UaClass::Proxy => "proxy",
            UaClass::Scanner => "scanner",
        }
    }

    pub fn is_machine(self) -> bool {
        self != UaClass::Human
    }
}

const PROXIES: &[&str] = &[
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "owa-imageproxy",
    "outlook image proxy",
    "mailprivacyprotection",
    "apple mail privacy",
];

const SCANNERS: &[&str] = &[
    "proofpoint",
    "mimecast",
    "barracuda",
    "safelinks",
    "safe links",
    "microsoft office",
    "ms-office",
    "symantec",
    "trendmicro",
    "fortinet",
    "sophos",
    "cisco",
    "ironport",
    "zscaler",
    "python-requests",
    "curl/",
    "wget",
    "go-http-client",
    "okhttp",
    "headlesschrome",
    "phantomjs",
    "bot",
    "spider",
    "crawler",
    "preview",
    "scanner",
    "urlscan",
];

/// Classifies a request. `seconds_after_delivery` is how long after the
/// relay accepted the message the hit came, when known.
pub fn classify(
    user_agent: &str,
    head_request: bool,
    seconds_after_delivery: Option<i64>,
) -> UaClass {
    classify_agent(user_agent, head_request).given_delivery(seconds_after_delivery)
}

/// What the request alone says (the user agent and the method), before the
/// message's delivery time is known: the route knows this much, the
/// tracking writer adds the rest ([`UaClass::given_delivery`]).
pub fn classify_agent(user_agent: &str, head_request: bool) -> UaClass {
    let ua = user_agent.to_ascii_lowercase();
    if PROXIES.iter().any(|p| ua.contains(p)) {
        return UaClass::Proxy;
    }
    // Apple Mail Privacy Protection fetches with a bare "Mozilla/5.0" agent.
    if ua.trim() == "mozilla/5.0" {
        return UaClass::Proxy;
    }
    if head_request || ua.trim().is_empty() || SCANNERS.iter().any(|s| ua.contains(s)) {
        return UaClass::Scanner;
    }
    UaClass::Human
}

impl UaClass {
    /// The class once the delivery time is known: what looks like a person
    /// but comes within [`super::SCANNER_WINDOW_SECS`] of delivery is a
    /// scanner reacting to the message.
    pub fn given_delivery(self, seconds_after_delivery: Option<i64>) -> UaClass {
        let instant =
            seconds_after_delivery.is_some_and(|s| (0..super::SCANNER_WINDOW_SECS).contains(&s));
        if self == UaClass::Human && instant {
            UaClass::Scanner
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

    #[test]
    fn a_phone_is_a_person() {
        assert_eq!(classify(PHONE, false, Some(3600)), UaClass::Human);
    }

    #[test]
    fn proxies_and_scanners_are_machines() {
        assert_eq!(classify("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", false, None), UaClass::Proxy);
        assert_eq!(classify("Mozilla/5.0", false, None), UaClass::Proxy);
        assert_eq!(classify(PHONE, true, None), UaClass::Scanner);
        assert_eq!(
            classify("Mozilla/5.0 Proofpoint URL Defense", false, None),
            UaClass::Scanner
        );
        assert_eq!(
            classify(PHONE, false, Some(2)),
            UaClass::Scanner,
            "seconds after delivery"
        );
    }
}
