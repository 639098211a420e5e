//! User-agent classification: browser family and major version, OS family and major version,
//! device class. The raw user agent is never stored; its families come from a closed list, so
//! no free text of the user agent (which apps sometimes fill with device ids) can leak through.
//!
//! Classification uses the `woothee` crate. User agents repeat heavily, so each distinct
//! string is classified once and remembered in a bounded cache.

use std::collections::HashMap;

use logveil_model::UaFields;

/// Classification of one user agent; every string is `'static` (from a closed list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UaInfo {
    pub browser_family: &'static str,
    pub browser_major: Option<u32>,
    pub os_family: &'static str,
    pub os_major: Option<u32>,
    pub device_class: &'static str,
}

impl UaInfo {
    pub const UNKNOWN: UaInfo = UaInfo {
        browser_family: "Other",
        browser_major: None,
        os_family: "Other",
        os_major: None,
        device_class: "other",
    };

    pub fn fields(&self) -> UaFields<'static> {
        UaFields {
            browser_family: self.browser_family,
            browser_major: self.browser_major,
            os_family: self.os_family,
            os_major: self.os_major,
            device_class: self.device_class,
        }
    }
}

const BROWSERS: &[&str] = &[
    "Chrome",
    "Firefox",
    "Safari",
    "Edge",
    "Opera",
    "Internet Explorer",
    "Vivaldi",
    "Yandex Browser",
    "SamsungBrowser",
    "Webview",
    "Sleipnir",
    "Google Search App",
    "HTTP Library",
];

/// Leading decimal digits of a version string (`"120.0.6099"` → 120).
fn major(v: &str) -> Option<u32> {
    let d: &str = &v[..v.bytes().take_while(|b| b.is_ascii_digit()).count()];
    if d.is_empty() || d.len() > 6 {
        None
    } else {
        d.parse().ok()
    }
}

fn os_family(os: &str, os_version: &str) -> (&'static str, Option<u32>) {
    if let Some(rest) = os.strip_prefix("Windows ") {
        return match rest {
            "10" | "7" | "8" | "95" | "98" => ("Windows", major(rest)),
            "8.1" => ("Windows", Some(8)),
            "Phone OS" => ("Windows Phone", major(os_version)),
            _ => ("Windows", None),
        };
    }
    let fam = match os {
        "Mac OSX" => "Mac OS X",
        "iPhone" | "iPod" => "iOS",
        "iPad" => "iPadOS",
        "Android" => "Android",
        "Linux" => "Linux",
        "ChromeOS" => "ChromeOS",
        "BSD" => "BSD",
        "BlackBerry" | "BlackBerry 10" => "BlackBerry",
        "Firefox OS" => "Firefox OS",
        _ => return ("Other", None),
    };
    (fam, major(os_version))
}

/// Classifies one user agent (uncached).
pub fn classify(ua: &str) -> UaInfo {
    let Some(r) = woothee::parser::Parser::new().parse(ua) else {
        return UaInfo::UNKNOWN;
    };
    let (os_family, os_major) = os_family(r.os, &r.os_version);
    let device_class = match r.category {
        "crawler" => "bot",
        "pc" => "desktop",
        "smartphone" if os_family == "iPadOS" => "tablet",
        "smartphone" | "mobilephone" => "mobile",
        "appliance" => "other",
        _ => "other",
    };
    let (browser_family, browser_major) = if device_class == "bot" {
        ("Bot", None)
    } else {
        match BROWSERS.iter().find(|b| **b == r.name) {
            Some(b) => (*b, major(r.version)),
            None => ("Other", None),
        }
    };
    UaInfo {
        browser_family,
        browser_major,
        os_family,
        os_major,
        device_class,
    }
}

/// User agents are classified on at most this many leading bytes.
const MAX_UA_BYTES: usize = 512;

/// A bounded cache of classifications keyed by the raw user-agent bytes.
pub struct UaCache {
    map: HashMap<Box<[u8]>, UaInfo, foldhash::fast::RandomState>,
    capacity: usize,
}

impl UaCache {
    pub fn new(capacity: usize) -> UaCache {
        UaCache {
            map: HashMap::with_capacity_and_hasher(256, Default::default()),
            capacity,
        }
    }

    /// Classification of `raw` (possibly non-UTF-8; `None` or empty means unknown).
    #[inline]
    pub fn classify(&mut self, raw: Option<&[u8]>) -> UaInfo {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return UaInfo::UNKNOWN;
        };
        // Bounded before lookup and classification: nothing legitimate is longer, and the
        // cache's memory stays bounded too.
        let raw = &raw[..raw.len().min(MAX_UA_BYTES)];
        if let Some(i) = self.map.get(raw) {
            return *i;
        }
        let info = classify(&String::from_utf8_lossy(raw));
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        self.map.insert(raw.into(), info);
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_agents() {
        let c = classify(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
        );
        assert_eq!(
            (
                c.browser_family,
                c.browser_major,
                c.os_family,
                c.device_class
            ),
            ("Chrome", Some(120), "Windows", "desktop")
        );
        let c = classify(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            (c.browser_family, c.os_family, c.device_class),
            ("Safari", "iOS", "mobile")
        );
        let c =
            classify("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!((c.browser_family, c.device_class), ("Bot", "bot"));
        assert_eq!(classify(""), classify("-"));
    }

    #[test]
    fn free_text_never_becomes_a_family() {
        let c =
            classify("MyApp/1.0 (device=3f2a9c1e-0000-4000-8000-000000000001; alice@example.com)");
        for s in [c.browser_family, c.os_family, c.device_class] {
            assert!(!s.contains("3f2a9c1e") && !s.contains('@'), "{s}");
        }
    }

    #[test]
    fn cache_is_bounded() {
        let mut cache = UaCache::new(2);
        for i in 0..10 {
            cache.classify(Some(format!("Agent/{i}").as_bytes()));
            assert!(cache.map.len() <= 2);
        }
        assert_eq!(cache.classify(None), UaInfo::UNKNOWN);
    }
}
