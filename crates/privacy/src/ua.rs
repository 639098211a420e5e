//! User-agent classification: browser family and major version, OS family and major version,
//! device class. The raw user agent is never stored; its families come from closed lists, so
//! no free text of the user agent (which apps sometimes fill with device ids) can leak through.
//!
//! Classification reads the product tokens of the user agent (`Name/version`, outside the
//! parenthesised comments) and a lowercase copy of it: bots and HTTP libraries first, then
//! browsers that name themselves (in-app browsers, UC, Yandex, Samsung, …), then the engine
//! families (Edge, Opera, Chrome, Firefox, Safari, web views), which count only when every
//! other token is part of their usual vocabulary: a Chromium-based browser or app that adds
//! its own token is `Other`, not `Chrome`. The `woothee` crate is a fallback (crawlers, rare
//! platforms). User agents repeat heavily, so each distinct string is classified once and
//! remembered in a bounded cache.

use std::collections::HashMap;
use std::sync::LazyLock;

use logveil_model::UaFields;

/// Classification of one user agent; every string is `'static` (from a closed list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UaInfo {
    /// `Chrome`, `Firefox`, `Safari`, `Edge`, …, `Bot` or `Other` (a closed list).
    pub browser_family: &'static str,
    /// Major version of the browser (never for `Bot`, `HTTP Library` or `Other`).
    pub browser_major: Option<u32>,
    /// `Windows`, `Mac OS X`, `iOS`, `iPadOS`, `Android`, …, `Other` (a closed list).
    pub os_family: &'static str,
    /// Major version of the OS, when the user agent tells it.
    pub os_major: Option<u32>,
    /// `desktop`, `mobile`, `tablet`, `bot` or `other`.
    pub device_class: &'static str,
}

impl UaInfo {
    /// The classification of a missing or unrecognised user agent.
    pub const UNKNOWN: UaInfo = UaInfo {
        browser_family: "Other",
        browser_major: None,
        os_family: "Other",
        os_major: None,
        device_class: "other",
    };

    /// The row fields of this classification.
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

/// The closed list of browser families (documented in docs/SCHEMA.md).
const BROWSER_FAMILIES: &[&str] = &[
    "Chrome",
    "Firefox",
    "Safari",
    "Edge",
    "Opera",
    "Internet Explorer",
    "Vivaldi",
    "Yandex Browser",
    "SamsungBrowser",
    "UC Browser",
    "Facebook",
    "Instagram",
    "Webview",
    "Sleipnir",
    "Google Search App",
    "HTTP Library",
    "Bot",
    "Other",
];

/// The closed list of OS families (documented in docs/SCHEMA.md).
const OS_FAMILIES: &[&str] = &[
    "Windows",
    "Windows Phone",
    "Mac OS X",
    "iOS",
    "iPadOS",
    "Android",
    "Linux",
    "ChromeOS",
    "BSD",
    "BlackBerry",
    "Firefox OS",
    "Other",
];

/// The closed list of device classes.
const DEVICE_CLASSES: &[&str] = &["desktop", "mobile", "tablet", "bot", "other"];

/// User agents are classified on at most this many leading bytes.
const MAX_UA_BYTES: usize = 512;

// ---------------------------------------------------------------------------------------------
// byte helpers
// ---------------------------------------------------------------------------------------------

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    find_iter(h, n).next()
}

/// Every position where `n` starts in `h`. The needles are short and the agents are short:
/// finding the first byte with `memchr` beats building a `memmem` searcher per call.
fn find_iter<'a>(h: &'a [u8], n: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let first = n.first().copied();
    memchr::memchr_iter(first.unwrap_or(0), h)
        .filter(move |&i| first.is_some() && starts(tail(h, i), n))
}

fn has(h: &[u8], n: &[u8]) -> bool {
    find(h, n).is_some()
}

fn has_any(h: &[u8], ns: &[&[u8]]) -> bool {
    ns.iter().any(|n| has(h, n))
}

/// A set of lowercase words found in one pass over a haystack (indexed by first byte), for
/// the long word lists: one search per word would cost microseconds per agent.
struct WordSet {
    by_first: Vec<Vec<&'static [u8]>>,
}

impl WordSet {
    fn new(words: &[&'static [u8]]) -> WordSet {
        let mut by_first = vec![Vec::new(); 256];
        for w in words {
            if let Some(list) = w.first().and_then(|&c| by_first.get_mut(usize::from(c))) {
                list.push(*w);
            }
        }
        WordSet { by_first }
    }

    fn any_in(&self, h: &[u8]) -> bool {
        h.iter().enumerate().any(|(i, &c)| {
            self.by_first
                .get(usize::from(c))
                .is_some_and(|ws| ws.iter().any(|w| starts(tail(h, i), w)))
        })
    }
}

/// `h` starts with `n`; compared inline, the needles are a few bytes long.
fn starts(h: &[u8], n: &[u8]) -> bool {
    h.len() >= n.len() && h.iter().zip(n).all(|(a, b)| a == b)
}

fn tail(h: &[u8], at: usize) -> &[u8] {
    h.get(at..).unwrap_or_default()
}

/// Leading decimal digits (`b"120.0.6099"` → 120); at most 6 digits.
fn lead_num(b: &[u8]) -> Option<u32> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 6 {
        return None;
    }
    b.iter().take(n).try_fold(0u32, |acc, c| {
        acc.checked_mul(10)?.checked_add(u32::from(c - b'0'))
    })
}

/// The number right after the first occurrence of `n` in `h`.
fn num_after(h: &[u8], n: &[u8]) -> Option<u32> {
    find(h, n).and_then(|i| lead_num(tail(h, i + n.len())))
}

/// The number right after the first occurrence of `n` that is followed by one.
fn num_after_any(h: &[u8], n: &[u8]) -> Option<u32> {
    find_iter(h, n).find_map(|i| lead_num(tail(h, i + n.len())))
}

/// `n` occurs in `h` not preceded by a letter or digit (start of a word).
fn has_word_start(h: &[u8], n: &[u8]) -> bool {
    find_iter(h, n).any(|i| {
        i.checked_sub(1)
            .and_then(|p| h.get(p))
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

// ---------------------------------------------------------------------------------------------
// product tokens
// ---------------------------------------------------------------------------------------------

/// A product token of the engine families' vocabulary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `Mozilla`, `AppleWebKit`, `Mobile`, `Gecko`, `like`, `Presto`, `Yowser`, a Linux
    /// distribution: carries no family.
    Plain,
    Safari,
    Version,
    Chrome,
    CriOs,
    Firefox,
    FxiOs,
    Edge,
    Opera,
    /// The Google Search App (`GSA/…`).
    Gsa,
    /// A distribution name that may be followed by a codename comment (`Ubuntu/10.04 (lucid)`).
    Distro,
}

fn vocabulary(name: &[u8]) -> Option<Tok> {
    Some(match name {
        b"Mozilla" | b"AppleWebKit" | b"Mobile" | b"Gecko" | b"like" | b"Presto" | b"Yowser" => {
            Tok::Plain
        }
        b"Safari" => Tok::Safari,
        b"Version" => Tok::Version,
        b"Chrome" | b"CrMo" | b"Chromium" => Tok::Chrome,
        b"CriOS" => Tok::CriOs,
        b"Firefox" | b"Shiretoko" | b"Minefield" | b"Namoroka" | b"GranParadiso" | b"BonEcho" => {
            Tok::Firefox
        }
        b"FxiOS" => Tok::FxiOs,
        b"Edg" | b"Edge" | b"EdgA" | b"EdgiOS" => Tok::Edge,
        b"OPR" | b"OPiOS" | b"OPT" | b"OPX" | b"Coast" => Tok::Opera,
        b"GSA" => Tok::Gsa,
        b"Ubuntu" | b"Fedora" | b"Debian" | b"Mint" | b"Gentoo" => Tok::Distro,
        // `Firefox-4.0/4.0b8pre` (betas)
        _ if name.starts_with(b"Firefox") => Tok::Firefox,
        _ => return None,
    })
}

/// What the product tokens of a user agent say.
#[derive(Default)]
struct Scan<'a> {
    /// Name of the first product token.
    first: &'a [u8],
    /// The first parenthesised comment (the platform).
    platform: &'a [u8],
    /// A product token outside the engine families' vocabulary.
    unknown: bool,
    /// A comment or bracketed part other than the platform, `(KHTML, like Gecko)`, a
    /// distribution's codename or Opera's `(Edition …)`.
    extra_comment: bool,
    /// `AppleWebKit/…+` (nightly builds and some embedded engines).
    webkit_plus: bool,
    webkit: bool,
    safari: bool,
    version: Option<&'a [u8]>,
    chrome: Option<&'a [u8]>,
    crios: Option<&'a [u8]>,
    firefox: Option<&'a [u8]>,
    fxios: Option<&'a [u8]>,
    edge: Option<&'a [u8]>,
    opera: Option<&'a [u8]>,
    gsa: Option<&'a [u8]>,
}

fn scan(ua: &[u8]) -> Scan<'_> {
    let mut s = Scan::default();
    let mut rest = ua;
    let mut comments = 0usize;
    let mut prev = None;
    while let Some((&c, after)) = rest.split_first() {
        if c == b' ' || c == b'+' {
            rest = after;
            continue;
        }
        if c == b'(' || c == b'[' {
            let close = if c == b'(' { b')' } else { b']' };
            let mut depth = 0usize;
            let end = rest
                .iter()
                .position(|&b| {
                    if b == c {
                        depth += 1;
                    } else if b == close {
                        depth = depth.saturating_sub(1);
                    }
                    depth == 0
                })
                .unwrap_or(rest.len());
            let (group, next) = rest.split_at_checked(end + 1).unwrap_or((rest, &[]));
            let inner = group
                .get(1..group.len().saturating_sub(1))
                .unwrap_or_default();
            if c == b'(' && comments == 0 {
                s.platform = inner;
            } else if !(c == b'('
                && (has(inner, b"KHTML")
                    || inner.starts_with(b"Edition")
                    || (prev == Some(Tok::Distro) && inner.iter().all(u8::is_ascii_lowercase))))
            {
                s.extra_comment = true;
            }
            comments += 1;
            rest = next;
            continue;
        }
        let end = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'+' | b'(' | b'['))
            .unwrap_or(rest.len());
        let (token, next) = rest.split_at_checked(end).unwrap_or((rest, &[]));
        rest = next;
        // `AppleWebKit/537.8+ (`: the `+` of a nightly build, not a URL-encoded space.
        let plus = next.starts_with(b"+ ") || next == b"+";
        let (name, version) = match memchr::memchr(b'/', token) {
            Some(i) => (token.get(..i).unwrap_or_default(), tail(token, i + 1)),
            None => (token, &[][..]),
        };
        let name = name
            .strip_suffix(b",")
            .or_else(|| name.strip_suffix(b";"))
            .unwrap_or(name);
        if s.first.is_empty() {
            s.first = name;
        }
        if version.is_empty() && !name.first().is_some_and(u8::is_ascii_alphabetic) {
            continue; // `.1453`, `240X400`: noise, not a product
        }
        let tok = vocabulary(name);
        prev = tok;
        match tok {
            None => s.unknown = true,
            Some(Tok::Plain | Tok::Distro) => {
                if name == b"AppleWebKit" {
                    s.webkit = true;
                    s.webkit_plus |= plus || version.contains(&b'+');
                }
            }
            Some(Tok::Safari) => s.safari = true,
            Some(Tok::Version) => s.version = s.version.or(Some(version)),
            Some(Tok::Chrome) => s.chrome = s.chrome.or(Some(version)),
            Some(Tok::CriOs) => s.crios = Some(version),
            Some(Tok::Firefox) => s.firefox = s.firefox.or(Some(version)),
            Some(Tok::FxiOs) => s.fxios = Some(version),
            Some(Tok::Edge) => s.edge = Some(version),
            Some(Tok::Opera) => s.opera = Some(version),
            Some(Tok::Gsa) => s.gsa = Some(version),
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// bots and HTTP libraries
// ---------------------------------------------------------------------------------------------

/// Lowercase words that mark crawlers, monitors, scanners and headless automation.
const BOT_WORDS: &[&[u8]] = &[
    b"spider",
    b"crawl",
    b"slurp",
    b"scraper",
    b"scaper",
    b"archiver",
    b"headless",
    b"phantomjs",
    b"heritrix",
    b"nutch",
    b"larbin",
    b"htdig",
    b"ichiro",
    b"holmes/",
    b"voyager/",
    b"findlinks",
    b"grub-client",
    b"altavista",
    b"link sleuth",
    b"whatweb",
    b"tlsprober",
    b"masscan",
    b"openvas",
    b"zgrab",
    b"nmap",
    b"nikto",
    b"sqlmap",
    b"bubing",
    b"qwantify",
    b"site24x7",
    b"monitis",
    b"gomezagent",
    b"yottaamonitor",
    b"pinger",
    b"monitoring",
    b"uptime",
    b"inspectiontool",
    b"internetarchive",
    b"ptst/",
    b"ruxitsynthetic",
    b"catchpoint",
    b"statuscake",
    b"pingdom",
    b"daumoa",
    b"feedfetcher",
    b"google web preview",
    b"lighthouse",
    b"facebookexternalhit",
    b"mediapartners-google",
    b"bingpreview",
    b"validator",
    b"checklinks",
    b"scrapy",
    b"datanyze",
    b"lycos",
    b"scooter",
    b"zyborg",
    b"teoma",
    b"indexer",
];

fn is_bot(lower: &[u8]) -> bool {
    // `bot` as in Googlebot, AhrefsBot, LinkedInBot/1.0 — but not Boto3/botocore (AWS SDKs)
    // or the CUBOT phone brand.
    let bot = find_iter(lower, b"bot").any(|i| {
        lower.get(i + 3) != Some(&b'o')
            && i.checked_sub(2)
                .and_then(|p| lower.get(p..i))
                .is_none_or(|p| p != b"cu")
    });
    static WORDS: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(BOT_WORDS));
    bot || WORDS.any_in(lower)
}

/// Lowercase names of HTTP client tools and libraries, matched as the first product token.
const LIBRARIES: &[&[u8]] = &[
    b"curl",
    b"wget",
    b"wget2",
    b"libcurl-agent",
    b"python-requests",
    b"python-urllib",
    b"python",
    b"python-httpx",
    b"httpx",
    b"aiohttp",
    b"pycurl",
    b"okhttp",
    b"go-http-client",
    b"go-resty",
    b"apache-httpclient",
    b"apache-httpasyncclient",
    b"apache-cxf",
    b"java",
    b"axios",
    b"got",
    b"node-fetch",
    b"undici",
    b"reqwest",
    b"ureq",
    b"hyper",
    b"isahc",
    b"libwww-perl",
    b"lwp::simple",
    b"www-mechanize",
    b"mechanize",
    b"guzzlehttp",
    b"guzzle",
    b"httpie",
    b"postmanruntime",
    b"insomnia",
    b"http.rb",
    b"ruby",
    b"faraday",
    b"rest-client",
    b"typhoeus",
    b"aws-cli",
    b"boto",
    b"boto3",
    b"botocore",
    b"google-http-java-client",
    b"google-api-java-client",
    b"google-api-python-client",
    b"jersey",
    b"ahc",
    b"async-http-client",
    b"akka-http",
    b"reactornetty",
    b"vert.x-webclient",
    b"unirest-java",
    b"scalaj-http",
    b"lua-resty-http",
    b"rusoto",
    b"urlgrabber",
    b"jets3t",
    b"ibm-cos-sdk-java",
    b"aria2",
    b"lftp",
    b"winhttp",
    b"php",
    b"dart",
    b"wordpress",
];

/// Lowercase library tokens recognised anywhere (SDKs that follow an application's token).
const LIBRARY_TOKENS: &[&[u8]] = &[
    b"aws-sdk-",
    b"python-urllib",
    b"google-http-java-client/",
    b"reactornetty/",
    b"minio-go/",
    b"botocore/",
    b"okhttp/",
    b"aiohttp/",
    b"wordpress/",
];

fn is_library(lower: &[u8]) -> bool {
    let end = lower
        .iter()
        .position(|b| matches!(b, b'/' | b' ' | b'(' | b';'))
        .unwrap_or(lower.len());
    let first = lower.get(..end).unwrap_or_default();
    LIBRARIES.contains(&first)
        || first.starts_with(b"aws-sdk-")
        || LIBRARY_TOKENS.iter().any(|t| has_word_start(lower, t))
}

/// A URL or e-mail address: real browsers never send one, crawlers announce themselves so.
fn has_contact(lower: &[u8]) -> bool {
    if has_any(lower, &[b"http://", b"https://", b"www."]) {
        return true;
    }
    memchr::memchr_iter(b'@', lower).any(|i| {
        let after = tail(lower, i + 1);
        let host = after
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')))
            .unwrap_or(after.len());
        let host = after.get(..host).unwrap_or_default();
        host.first().is_some_and(u8::is_ascii_alphabetic)
            && host.iter().rposition(|&b| b == b'.').is_some_and(|d| {
                tail(host, d + 1)
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic)
            })
    })
}

// ---------------------------------------------------------------------------------------------
// browser
// ---------------------------------------------------------------------------------------------

fn ver(v: Option<&[u8]>) -> Option<u32> {
    v.and_then(lead_num)
}

/// In-app browsers of Facebook and Instagram. Checked first: their user agents carry free
/// text (carrier names like `OrangeBotswana`) that must not make them bots.
fn in_app(ua: &[u8]) -> Option<(&'static str, Option<u32>)> {
    if has_any(ua, &[b"FBAN/", b"FBAV/", b"FB_IAB/"]) {
        return Some(("Facebook", num_after(ua, b"FBAV/")));
    }
    num_after_any(ua, b"Instagram ").map(|v| ("Instagram", Some(v)))
}

/// Browsers that name themselves with a token of their own, whatever else the agent says.
fn self_named(ua: &[u8]) -> Option<(&'static str, Option<u32>)> {
    const UC: &[&[u8]] = &[
        b"UCBrowser",
        b"UCMobile/",
        b"UBrowser/",
        b"UC Browser",
        b"UCWEB",
        b"UCTurbo/",
    ];
    if has_any(ua, UC) {
        let major = UC.iter().find_map(|n| {
            find_iter(ua, n).find_map(|i| {
                let v = tail(ua, i + n.len());
                lead_num(v.strip_prefix(b"/").unwrap_or(v))
            })
        });
        return Some(("UC Browser", major));
    }
    if has(ua, b"Sleipnir") {
        let major = num_after(ua, b"Sleipnir/").or_else(|| num_after(ua, b"Sleipnir "));
        return Some(("Sleipnir", major));
    }
    for (needle, family) in [
        (&b"YaBrowser/"[..], "Yandex Browser"),
        (b"YaSearchBrowser/", "Yandex Browser"),
        (b"SamsungBrowser/", "SamsungBrowser"),
        (b"Vivaldi/", "Vivaldi"),
    ] {
        if has(ua, needle) {
            return Some((family, num_after(ua, needle)));
        }
    }
    None
}

/// Presto-era Opera (`Opera/9.80 (…) Presto/2.12 Version/12.16`, `Opera Mini/…`).
fn classic_opera(ua: &[u8]) -> Option<u32> {
    num_after(ua, b"Opera Mini/")
        .or_else(|| num_after(ua, b"Opera Mini/att/"))
        .or_else(|| {
            (ua.starts_with(b"Opera/") && has(ua, b"Version/"))
                .then(|| num_after(ua, b"Version/"))
                .flatten()
        })
        .or_else(|| num_after_any(ua, b"Opera/"))
        .or_else(|| num_after_any(ua, b"Opera "))
}

/// Internet Explorer (and the shells that embed it, which are `Other`).
fn internet_explorer(s: &Scan<'_>, lower_platform: &[u8]) -> Option<(&'static str, Option<u32>)> {
    let p = s.platform;
    let unknown = s.unknown && !has(p, b"IEMobile");
    if s.first != b"Mozilla" || unknown || !(has(p, b"MSIE") || has(p, b"Trident/")) {
        return None;
    }
    const SHELLS: &[&[u8]] = &[
        b"aol",
        b"msoffice",
        b"outlook",
        b"qqbrowser",
        b"maxthon",
        b"myie",
        b"avant",
        b"chromeframe/",
        b"baidu",
        b"bidubrowser",
        b"360se",
        b"theworld",
        b"metasr",
        b"lbbrowser",
        b"webtv",
    ];
    if has_any(lower_platform, SHELLS) {
        return Some(("Other", None));
    }
    // Compatibility view sends `MSIE 7.0`; Trident tells the real version (Trident/7 = IE 11).
    let major = num_after(p, b"IEMobile ")
        .or_else(|| num_after(p, b"Trident/").map(|t| (t + 4).min(11)))
        .or_else(|| num_after(p, b"MSIE "))
        .or_else(|| num_after(p, b"IE "));
    Some(("Internet Explorer", major))
}

/// The browser, or `None` when nothing here recognises it.
fn browser(ua: &[u8], lower: &[u8], s: &Scan<'_>) -> Option<(&'static str, Option<u32>)> {
    if let Some(b) = self_named(ua) {
        return Some(b);
    }
    if s.opera.is_none() && has(ua, b"Opera") {
        return Some(("Opera", classic_opera(ua)));
    }
    let lp: Vec<u8> = s.platform.to_ascii_lowercase();
    if let Some(b) = internet_explorer(s, &lp) {
        return Some(if has_contact(lower) { ("Bot", None) } else { b });
    }
    // Apps that name themselves in the platform comment (`Valve Steam Client`).
    let app_platform = has_any(s.platform, &[b"Valve ", b"GOST"]);
    if s.first == b"Mozilla" && !s.unknown && !s.extra_comment && !app_platform {
        if let Some(v) = s.edge {
            return Some(("Edge", lead_num(v)));
        }
        if let Some(v) = s.opera {
            return Some(("Opera", lead_num(v)));
        }
        if let Some(v) = s.gsa {
            return Some(("Google Search App", lead_num(v)));
        }
        if let Some(v) = s.crios {
            return Some(("Chrome", lead_num(v)));
        }
        if let Some(v) = s.fxios {
            return Some(("Firefox", lead_num(v)));
        }
        if let Some(v) = s.chrome {
            // Android's system web view: `; wv)` or Chrome behind `Version/4.0`.
            if has(s.platform, b"; wv") || s.version.is_some() {
                return Some(("Webview", lead_num(v)));
            }
            return Some(("Chrome", lead_num(v)));
        }
        if s.firefox.is_some() {
            return Some(("Firefox", ver(s.firefox)));
        }
        let apple = has_any(&lp, &[b"iphone", b"ipad", b"ipod"]);
        if s.safari && !s.webkit_plus && (apple || has_any(&lp, &[b"macintosh", b"windows"])) {
            return Some(("Safari", ver(s.version)));
        }
        if apple && s.webkit && !s.safari && s.version.is_none() {
            return Some(("Webview", None));
        }
    }
    // Safari's own background requests: `Safari/6533.18.5 CFNetwork/454.9.8 Darwin/10.4.0`.
    if s.first == b"Safari" && has(ua, b"CFNetwork/") {
        return Some(("Safari", None));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// OS
// ---------------------------------------------------------------------------------------------

/// The number after the first of `prefixes` found in `lower` that is followed by one
/// (after spaces, commas or colons).
fn version_after(lower: &[u8], prefixes: &[&[u8]]) -> Option<u32> {
    prefixes.iter().find_map(|p| {
        find_iter(lower, p).find_map(|i| {
            let v = tail(lower, i + p.len());
            let skip = v
                .iter()
                .take_while(|b| matches!(b, b' ' | b',' | b':'))
                .count();
            lead_num(tail(v, skip))
        })
    })
}

/// iOS major version of an app's `CFNetwork/C Darwin/D` user agent. Darwin 15 is iOS 9 …
/// Darwin 24 is iOS 18; before that one Darwin release spans two iOS releases, which the
/// CFNetwork version tells apart (485 shipped with iOS 4, 548 with 5, 609 with 6, 672 with 7,
/// 7xx with 8).
fn darwin_ios(lower: &[u8]) -> Option<u32> {
    let darwin = num_after(lower, b"darwin/").filter(|d| *d >= 10)?;
    if darwin >= 15 {
        return Some(darwin - 6);
    }
    let by_cfnetwork = num_after(lower, b"cfnetwork/").and_then(|c| match c {
        400..500 => Some(4),
        500..600 => Some(5),
        600..672 => Some(6),
        672..700 => Some(7),
        700..758 => Some(8),
        _ => None,
    });
    by_cfnetwork.or(Some(darwin - 6))
}

/// The word `ios` (not `bios`, `radios`) followed by a separator: `iOS 12.1`, `(iOS; U;`.
fn has_ios_word(lower: &[u8]) -> bool {
    find_iter(lower, b"ios").any(|i| {
        let before_ok = i
            .checked_sub(1)
            .and_then(|p| lower.get(p))
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        before_ok && matches!(lower.get(i + 3), Some(b' ' | b';' | b'/' | b'_' | b')'))
    })
}

/// The version after the word `ios` (`iOS 12.1`, `(iOS; 7.1;`, `iOS/16`; not `CriOS/120`).
fn ios_word_version(lower: &[u8]) -> Option<u32> {
    find_iter(lower, b"ios").find_map(|i| {
        let word = i
            .checked_sub(1)
            .and_then(|p| lower.get(p))
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let v = tail(lower, i + 3);
        let skip = v
            .iter()
            .take_while(|b| matches!(b, b' ' | b';' | b'/' | b'_'))
            .count();
        if word && skip > 0 {
            lead_num(tail(v, skip))
        } else {
            None
        }
    })
}

fn windows_nt(lower: &[u8]) -> Option<Option<u32>> {
    let i = find(lower, b"windows nt ")?;
    let v = tail(lower, i + 11);
    let maj = lead_num(v);
    let minor = v
        .iter()
        .position(|&b| b == b'.')
        .and_then(|d| lead_num(tail(v, d + 1)));
    Some(match (maj, minor) {
        (Some(10), _) | (Some(6), Some(4)) => Some(10),
        (Some(6), Some(2 | 3)) => Some(8),
        (Some(6), Some(1)) => Some(7),
        _ => None,
    })
}

/// The OS family from woothee's names (the fallback).
fn woothee_os(os: &str, os_version: &str) -> (&'static str, Option<u32>) {
    let major = lead_num(os_version.as_bytes());
    if let Some(rest) = os.strip_prefix("Windows ") {
        return match rest {
            "10" | "7" | "8" | "95" | "98" => ("Windows", lead_num(rest.as_bytes())),
            "8.1" => ("Windows", Some(8)),
            "Phone OS" | "CE" => ("Windows Phone", major),
            _ => ("Windows", None),
        };
    }
    let fam = match os {
        "Mac OSX" => "Mac OS X",
        "iPhone" | "iPod" | "iOS" => "iOS",
        "iPad" => "iPadOS",
        "Android" => "Android",
        "Linux" => "Linux",
        "ChromeOS" => "ChromeOS",
        "BSD" => "BSD",
        "BlackBerry" | "BlackBerry 10" => "BlackBerry",
        "Firefox OS" => "Firefox OS",
        _ => return ("Other", None),
    };
    (fam, major)
}

/// The OS, or `None` when nothing here recognises it.
fn os(ua: &[u8], lower: &[u8], s: &Scan<'_>) -> Option<(&'static str, Option<u32>)> {
    // Apple TV and watch, TVs, cars and e-readers are not the desktop or phone they resemble.
    const NOT_A_COMPUTER: &[&[u8]] = &[
        b"apple tv",
        b"appletv",
        b"watchos",
        b"tvos",
        b"crkey",
        b"googletv",
        b"smart-tv",
        b"smarttv",
        b"hbbtv",
        b"netcast",
        b"web0s",
        b"webos",
        b"hpwos",
        b"tizen",
        b"maemo",
        b"meego",
        b"sailfish",
        b"kindle/",
        b"wetab",
        b"kaios",
        b"symbian",
        b"playstation",
        b"nintendo",
    ];
    static NOT_COMPUTERS: LazyLock<WordSet> = LazyLock::new(|| WordSet::new(NOT_A_COMPUTER));
    if NOT_COMPUTERS.any_in(lower) {
        return Some(("Other", None));
    }
    if has(lower, b"windows phone") {
        return Some((
            "Windows Phone",
            version_after(lower, &[b"windows phone os ", b"windows phone "]),
        ));
    }
    if has_any(
        lower,
        &[
            b"windows mobile",
            b"windows ce",
            b"iemobile",
            b"zunewp7",
            b"xblwp7",
        ],
    ) || has(lower, b"; wds ")
    {
        let major = num_after(lower, b"; wds ")
            .or_else(|| has(lower, b"wp7").then_some(7))
            .or_else(|| num_after(lower, b"windows mobile "));
        return Some(("Windows Phone", major));
    }
    let ios_version = || {
        version_after(
            lower,
            &[
                b"iphone os ",
                b"ipad os ",
                b"cpu os ",
                b"cpu iphone ",
                b"iph os ",
                b"ipd os ",
                b"(iphone/",
                b"iphone os,",
                b"os_",
            ],
        )
        .or_else(|| ios_word_version(lower))
        .or_else(|| darwin_ios(lower))
    };
    let ipad = has(lower, b"ipad");
    let ios_app = s.crios.is_some() || s.fxios.is_some() || has_any(ua, &[b"EdgiOS/", b"OPiOS/"]);
    if has_any(
        lower,
        &[b"iphone", b"ipod", b"like mac os x", b"iph os", b"ipd os"],
    ) || ipad
    {
        return Some((if ipad { "iPadOS" } else { "iOS" }, ios_version()));
    }
    if ios_app {
        // An iOS browser on `Macintosh` is an iPad asking for desktop pages.
        let fam = if has(lower, b"macintosh") {
            "iPadOS"
        } else {
            "iOS"
        };
        return Some((fam, ios_version()));
    }
    if has_any(
        lower,
        &[b"android", b"silk/", b"silk-accelerated", b"kindle fire"],
    ) || has(lower, b"(linux; u; adr ")
        || lower.starts_with(b"juc")
    {
        let major = find_iter(lower, b"android").find_map(|i| {
            let v = tail(lower, i + 7);
            let v = v.trim_ascii_start();
            let v = v
                .strip_prefix(b";")
                .or_else(|| v.strip_prefix(b":"))
                .unwrap_or(v)
                .trim_ascii_start();
            let v = v.strip_prefix(b"mobile").unwrap_or(v);
            let v = v
                .strip_prefix(b"-")
                .or_else(|| v.strip_prefix(b"/"))
                .unwrap_or(v);
            lead_num(v.trim_ascii_start())
        });
        let major = major.or_else(|| num_after(lower, b"adr ")).or_else(|| {
            lower
                .starts_with(b"juc")
                .then(|| version_after(lower, &[b"u;"]))
                .flatten()
        });
        return Some(("Android", major));
    }
    if has_ios_word(lower) {
        return Some(("iOS", ios_version()));
    }
    if let Some(i) = find(lower, b"darwin/") {
        let darwin = lead_num(tail(lower, i + 7));
        let mac = has_any(
            lower,
            &[
                b"x86_64",
                b"i386",
                b"macintosh",
                b"macbook",
                b"imac",
                b"macmini",
                b"macpro",
            ],
        );
        return Some(match darwin {
            // Darwin 20 is macOS 11; every earlier one is a 10.x.
            Some(d) if mac => ("Mac OS X", Some(if d < 20 { 10 } else { d - 9 })),
            None if mac => ("Mac OS X", None),
            _ => ("iOS", darwin_ios(lower)),
        });
    }
    if has_any(
        lower,
        &[
            b"macintosh",
            b"mac os x",
            b"mac_os_x",
            b"macos x",
            b"os x 10",
            b"os/macos",
            b"mac_powerpc",
        ],
    ) || has_word_start(lower, b"darwin")
    {
        let major = version_after(
            lower,
            &[
                b"mac os x version ",
                b"mac os x/",
                b"mac os x ",
                b"mac_os_x/",
                b"macos x ",
                b"os x ",
            ],
        );
        return Some(("Mac OS X", major));
    }
    if has(lower, b"cros ") {
        // `CrOS x86_64 14541.0.0`: the platform version follows the architecture.
        let major = find(lower, b"cros ").and_then(|i| {
            let v = tail(lower, i + 5);
            let arch = v.iter().position(|&b| b == b' ')?;
            lead_num(tail(v, arch + 1))
        });
        return Some(("ChromeOS", major));
    }
    if has_any(
        lower,
        &[b"blackberry", b"bb10", b"rim tablet os", b"playbook"],
    ) {
        // `BlackBerry9700/5.0.0.351`, `RIM Tablet OS 2.1.0`, or WebKit's `Version/7.1.0.346`.
        let model_os = find_iter(lower, b"blackberry").find_map(|i| {
            let v = tail(lower, i + 10);
            let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
            (digits > 0)
                .then(|| tail(v, digits).strip_prefix(b"/"))
                .flatten()
                .and_then(lead_num)
        });
        let major = model_os
            .or_else(|| num_after(lower, b"rim tablet os "))
            .or_else(|| num_after(lower, b"version/"));
        return Some(("BlackBerry", major));
    }
    // Firefox OS: `Mozilla/5.0 (Mobile; rv:26.0) Gecko/26.0 Firefox/26.0`, no OS named.
    if s.firefox.is_some()
        && (s.platform.starts_with(b"Mobile;") || s.platform.starts_with(b"Tablet;"))
    {
        // Firefox OS 1.x shipped Gecko 18 to 30, 2.x Gecko 32 and later.
        let major = num_after(lower, b"gecko/")
            .filter(|g| (18..100).contains(g))
            .map(|g| if g < 32 { 1 } else { 2 });
        return Some(("Firefox OS", major));
    }
    if has(lower, b"bsd") {
        let major = version_after(lower, &[b"freebsd ", b"openbsd ", b"netbsd ", b"freebsd"]);
        return Some(("BSD", major));
    }
    if has_any(
        lower,
        &[
            b"linux",
            b"ubuntu",
            b"debian",
            b"fedora",
            b"red hat",
            b"redhat",
            b"gentoo",
            b"mandriva",
        ],
    ) {
        return Some(("Linux", None));
    }
    if let Some(major) = windows_nt(lower) {
        return Some(("Windows", major));
    }
    if has_any(
        lower,
        &[
            b"windows", b"win32", b"win64", b"win nt", b"winnt", b"win98", b"win95",
        ],
    ) {
        let major = if has(lower, b"win95") {
            Some(95)
        } else if has(lower, b"win98") {
            Some(98)
        } else {
            version_after(lower, &[b"windows ", b"windows/"])
                .filter(|v| matches!(v, 7 | 8 | 10 | 11 | 95 | 98 | 2000))
        };
        return Some(("Windows", major));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// classify
// ---------------------------------------------------------------------------------------------

/// Classifies one user agent (uncached). Only its first 512 bytes are read.
pub fn classify(ua: &str) -> UaInfo {
    let mut cut = ua.len().min(MAX_UA_BYTES);
    while !ua.is_char_boundary(cut) {
        cut -= 1;
    }
    let ua = ua.get(..cut).unwrap_or_default().trim();
    if ua.is_empty() || ua == "-" {
        return UaInfo::UNKNOWN;
    }
    let bytes = ua.as_bytes();
    // `+` stands for a space in URL-encoded agents (`Mozilla/5.0+(iPhone;+CPU+iPhone+OS+9_3`).
    let lower: Vec<u8> = bytes
        .iter()
        .map(|&b| {
            if b == b'+' {
                b' '
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect();
    // woothee is the fallback for what the rules here do not recognise (the long tail).
    let woothee = std::cell::OnceCell::new();
    let w = || {
        woothee
            .get_or_init(|| woothee::parser::Parser::new().parse(ua))
            .as_ref()
    };
    let s = scan(bytes);
    let (os_family, os_major) = os(bytes, &lower, &s)
        .or_else(|| w().map(|r| woothee_os(r.os, &r.os_version)))
        .unwrap_or(("Other", None));
    let (browser_family, browser_major) = if let Some(b) = in_app(bytes) {
        b
    } else if is_bot(&lower) {
        ("Bot", None)
    } else if is_library(&lower) {
        ("HTTP Library", None)
    } else if let Some(b) = browser(bytes, &lower, &s) {
        b
    } else {
        match w().map(|r| (r.category, r.name)) {
            Some(("crawler", _)) => ("Bot", None),
            Some((_, "HTTP Library")) => ("HTTP Library", None),
            _ if has_contact(&lower) => ("Bot", None),
            _ => ("Other", None),
        }
    };
    let device_class = match (browser_family, os_family) {
        ("Bot", _) => "bot",
        ("HTTP Library", _) => "other",
        (_, "iPadOS") => "tablet",
        (_, "iOS" | "Windows Phone" | "Firefox OS") => "mobile",
        // Android tablets leave `Mobile` out of their user agent.
        (_, "Android") if has(&lower, b"mobile") => "mobile",
        (_, "Android") => "tablet",
        (_, "BlackBerry") if has_any(&lower, &[b"playbook", b"tablet"]) => "tablet",
        (_, "BlackBerry") => "mobile",
        (_, "Windows" | "Mac OS X" | "Linux" | "ChromeOS" | "BSD") => "desktop",
        _ => match w().map_or("", |r| r.category) {
            "pc" => "desktop",
            "smartphone" | "mobilephone" => "mobile",
            _ => "other",
        },
    };
    debug_assert!(BROWSER_FAMILIES.contains(&browser_family));
    debug_assert!(OS_FAMILIES.contains(&os_family));
    debug_assert!(DEVICE_CLASSES.contains(&device_class));
    UaInfo {
        browser_family,
        browser_major,
        os_family,
        os_major,
        device_class,
    }
}

/// A bounded cache of classifications keyed by the raw user-agent bytes.
pub struct UaCache {
    map: HashMap<Box<[u8]>, UaInfo, foldhash::fast::RandomState>,
    capacity: usize,
}

impl UaCache {
    /// A cache that forgets everything once it holds `capacity` user agents.
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
        let raw = raw.get(..raw.len().min(MAX_UA_BYTES)).unwrap_or(raw);
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

    fn b(ua: &str) -> (&'static str, Option<u32>) {
        let c = classify(ua);
        (c.browser_family, c.browser_major)
    }

    fn o(ua: &str) -> (&'static str, Option<u32>, &'static str) {
        let c = classify(ua);
        (c.os_family, c.os_major, c.device_class)
    }

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
    fn browsers_that_look_like_chrome_or_safari() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        assert_eq!(
            b(&format!("{chrome} Edg/124.0.2478.51")),
            ("Edge", Some(124))
        );
        assert_eq!(b(&format!("{chrome} OPR/109.0.0.0")), ("Opera", Some(109)));
        assert_eq!(b(&format!("{chrome} Teams/1.2")), ("Other", None));
        assert_eq!(b(&format!("{chrome} SomeShell/3.0")), ("Other", None));
        assert_eq!(
            b(
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
            ),
            ("SamsungBrowser", Some(24))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Yowser/2.5 Safari/537.36"
            ),
            ("Yandex Browser", Some(24))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (Linux; U; Android 13; en-US; SM-A515F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.80 UCBrowser/13.6.0.1315 Mobile Safari/537.36"
            ),
            ("UC Browser", Some(13))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1"
            ),
            ("Chrome", Some(123))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/124.0 Mobile/15E148 Safari/605.1.15"
            ),
            ("Firefox", Some(124))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.40.107;FBBV/1]"
            ),
            ("Facebook", Some(455))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 323.0.3.23.54 (iPhone14,5; iOS 17_4; en_US)"
            ),
            ("Instagram", Some(323))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36"
            ),
            ("Webview", Some(120))
        );
        assert_eq!(
            b(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
            ),
            ("Webview", None)
        );
        assert_eq!(
            b("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"),
            ("Firefox", Some(125))
        );
        assert_eq!(
            b("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko"),
            ("Internet Explorer", Some(11))
        );
    }

    #[test]
    fn bots_and_libraries() {
        for ua in [
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (compatible; SomeIndexer/1.0; +https://example.com/about)",
        ] {
            assert_eq!(classify(ua).device_class, "bot", "{ua}");
        }
        for ua in [
            "curl/8.4.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "okhttp/4.12.0",
            "Boto3/1.28.62 md/Botocore#1.31.62 ua/2.0 os/macos#22.4.0",
        ] {
            assert_eq!(b(ua), ("HTTP Library", None), "{ua}");
        }
        // A phone brand that contains "bot" is not a bot.
        assert_ne!(
            classify("Mozilla/5.0 (Linux; Android 12; CUBOT X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36").device_class,
            "bot"
        );
    }

    #[test]
    fn operating_systems() {
        assert_eq!(
            o("MyApp/1.0 CFNetwork/1494.0.7 Darwin/23.4.0"),
            ("iOS", Some(17), "mobile")
        );
        assert_eq!(
            o(
                "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
            ),
            ("iPadOS", Some(17), "tablet")
        );
        assert_eq!(
            o(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120 Version/17.0 Safari/605.1.15"
            ),
            ("iPadOS", None, "tablet")
        );
        assert_eq!(
            o(
                "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
            ),
            ("Android", Some(13), "tablet")
        );
        assert_eq!(
            o(
                "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"
            ),
            ("Windows", Some(7), "desktop")
        );
        assert_eq!(
            o("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36").0,
            "ChromeOS"
        );
        assert_eq!(
            o("Mozilla/5.0 (X11; FreeBSD amd64; rv:121.0) Gecko/20100101 Firefox/121.0").0,
            "BSD"
        );
        assert_eq!(
            o("Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.0 Chrome/94.0.4606.31 TV Safari/537.36").0,
            "Other"
        );
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
    fn results_come_from_the_closed_lists() {
        for ua in [
            "",
            "(",
            ")",
            "[[[",
            "/",
            "Mozilla/",
            "Mozilla/5.0 (",
            "Opera Mini/",
            "UCWEB/",
            "Instagram 99999999999",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 99999999999_1 like Mac OS X)",
            "x CFNetwork/1 Darwin/0",
            "Mozilla/5.0 (Windows NT 6.1; Trident/4294967295; rv:11.0) like Gecko",
            "\u{1F600} agent ü (ä; ö) [ß]",
        ] {
            let c = classify(ua);
            assert!(BROWSER_FAMILIES.contains(&c.browser_family), "{ua}");
            assert!(OS_FAMILIES.contains(&c.os_family), "{ua}");
            assert!(DEVICE_CLASSES.contains(&c.device_class), "{ua}");
        }
        // Longer than the classified prefix, cut inside a multi-byte character.
        let long = format!("{}{}", "é".repeat(300), "Chrome/1");
        assert!(BROWSER_FAMILIES.contains(&classify(&long).browser_family));
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
