//! Conformance of `ua::classify` against the uap-core test cases (`test_ua.yaml`,
//! `test_os.yaml`), read in place from `$LOGVEIL_CORPUS/useragent` or
//! `<workspace>/../shared/corpus/useragent` (never copied into the repository: licence).
//! Skips with one line on stdout when the corpus is absent.
//!
//! uap-core names about a thousand families; logveil keeps a short closed list on purpose
//! (coarse families are a privacy feature). Each uap family is mapped onto that list by the
//! tables below; a family missing from them is expected to come out as `Other`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use logveil_privacy::ua::classify;

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LOGVEIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: corpus not found at {}", dir.display());
        None
    }
}

/// One uap-core test case: the user agent and the expected family and major version.
struct Case {
    ua: String,
    family: String,
    major: Option<String>,
}

/// A scalar of these files: `'single'` (with `''` for a quote), `"double"` or empty.
fn scalar(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(s.replace("''", "'"))
    } else if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(s.to_string())
    } else if v.is_empty() || v == "~" || v == "null" {
        None
    } else {
        Some(v.to_string())
    }
}

/// A tiny reader for the flat `test_cases:` lists of uap-core (no YAML crate needed).
fn read_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("- user_agent_string:") {
            cases.push(Case {
                ua: scalar(v).unwrap_or_default(),
                family: String::new(),
                major: None,
            });
        } else if let Some(c) = cases.last_mut() {
            if let Some(v) = line.strip_prefix("family:") {
                c.family = scalar(v).unwrap_or_default();
            } else if let Some(v) = line.strip_prefix("major:") {
                c.major = scalar(v);
            }
        }
    }
    assert!(
        cases.iter().all(|c| !c.family.is_empty()),
        "{}",
        path.display()
    );
    cases
}

/// uap browser families that logveil reports under one of its own names.
const BROWSER_MAP: &[(&str, &str)] = &[
    ("Chrome", "Chrome"),
    ("Chrome Mobile", "Chrome"),
    ("Chrome Mobile iOS", "Chrome"),
    ("Chromium", "Chrome"),
    ("Chrome Mobile WebView", "Webview"),
    ("Mobile Safari UI/WKWebView", "Webview"),
    ("Firefox", "Firefox"),
    ("Firefox Mobile", "Firefox"),
    ("Firefox iOS", "Firefox"),
    ("Firefox Beta", "Firefox"),
    ("Firefox Alpha", "Firefox"),
    ("Firefox (Shiretoko)", "Firefox"),
    ("Firefox Focus", "Firefox"),
    ("Safari", "Safari"),
    ("Mobile Safari", "Safari"),
    ("Edge", "Edge"),
    ("Edge Mobile", "Edge"),
    ("Opera", "Opera"),
    ("Opera Mini", "Opera"),
    ("Opera Mobile", "Opera"),
    ("Opera Tablet", "Opera"),
    ("Opera Touch", "Opera"),
    ("Opera GX", "Opera"),
    ("Opera Neon", "Opera"),
    ("Opera Coast", "Opera"),
    ("IE", "Internet Explorer"),
    ("IE Mobile", "Internet Explorer"),
    ("IE Large Screen", "Internet Explorer"),
    ("Vivaldi", "Vivaldi"),
    ("Yandex Browser", "Yandex Browser"),
    ("Samsung Internet", "SamsungBrowser"),
    ("Sleipnir", "Sleipnir"),
    ("Google", "Google Search App"),
    ("UC Browser", "UC Browser"),
    ("Facebook", "Facebook"),
    ("Facebook Messenger", "Facebook"),
    ("Instagram", "Instagram"),
];

/// uap families of programmatic HTTP clients (command-line tools, language libraries, SDKs):
/// logveil's `HTTP Library`.
const HTTP_LIBRARIES: &[&str] = &[
    "AHC",
    "Apache-CXF",
    "Apache-HttpClient",
    "aria2",
    "aws-cli",
    "aws-sdk-cpp",
    "aws-sdk-dotnet-45",
    "aws-sdk-go",
    "aws-sdk-go-v2",
    "aws-sdk-java",
    "aws-sdk-nodejs",
    "aws-sdk-ruby2",
    "axios",
    "akka-http",
    "Boto",
    "Boto3",
    "curl",
    "go-resty",
    "Go-http-client",
    "Google-HTTP-Java-Client",
    "got",
    "GuzzleHttp",
    "http.rb",
    "HTTPie",
    "ibm-cos-sdk-java",
    "Java",
    "Jersey",
    "JetS3t",
    "libcurl-agent",
    "libwww-perl",
    "lua-resty-http",
    "minio-go",
    "okhttp",
    "PostmanRuntime",
    "PycURL",
    "Python aiohttp",
    "Python Requests",
    "Python-urllib",
    "ReactorNetty",
    "reqwest",
    "rusoto",
    "scalaj-http",
    "unirest-java",
    "ureq",
    "urlgrabber",
    "Vert.x-WebClient",
    "fetchurl",
    "lftp",
    "Wget",
    "wget2",
    "WordPress",
];

/// uap families of crawlers, monitors, scanners and headless automation whose name does not
/// say so (names with `bot`, `spider`, `crawl`, `slurp`, `robot`, `archiver` or `scraper` count
/// as bots anyway), and server-side fetchers (feed readers, link previews, image proxies).
/// Each was judged by its user agents in the corpus: they name a crawler or fetcher, link a
/// crawler's information page or give a crawler's contact address. Families whose cases mix
/// apps and crawlers (uap `Argus`, `Pinterest`, `WIRE`) are left out.
const OTHER_BOTS: &[&str] = &[
    "008",
    "50.nu",
    "A6-Indexer",
    "Aboundex",
    "Accoona-AI-Agent",
    "Accoona-Biz-Agent",
    "AdsBot-Google",
    "altavista",
    "Altresium",
    "Ant-Nutch",
    "AppEngine-Google",
    "Ask Jeeves",
    "Axtaris",
    "BaiduMobaider",
    "BingPreview",
    "Bloglovin",
    "BoardReader",
    "BoardReader Blog Indexer",
    "BoardReader Favicon Fetcher",
    "boitho.com-dc",
    "BUbiNG",
    "Catchpoint",
    "Charlotte",
    "Checklinks",
    "clumboot",
    "DataparkSearch",
    "Daumoa",
    "Daumoa-feedfetcher",
    "DNSGroup",
    "EDI",
    "envolk",
    "findlinks",
    "Flamingo_SearchEngine",
    "Genieo",
    "GomezAgent",
    "gonzo1",
    "Goodzer",
    "Google-InspectionTool",
    "Grub",
    "grub-client",
    "HeadlessChrome",
    "heritrix",
    "HiddenMarket",
    "holmes",
    "HooWWWer",
    "htdig",
    "ichiro",
    "ichiro/mobile",
    "IconSurf",
    "IlTrovatore",
    "IlTrovatore-Setaccio",
    "Infohelfer",
    "InfuzApp",
    "INGRID",
    "InternetArchive",
    "Isara",
    "Kraken",
    "Kurzor",
    "larbin",
    "LEIA",
    "LinkAider",
    "Llaut",
    "LOOQ",
    "lycos",
    "masscan",
    "Mediapartners-Google",
    "Monitis",
    "mozDex",
    "Netvibes",
    "NewsGator",
    "NewsGator FetchLinks extension",
    "NewsGatorOnline",
    "Nutch",
    "Nutch; http:",
    "NutchCVS",
    "NutchOrg",
    "NutchOSUOSL",
    "ObjectsSearch",
    "OpenVAS Scanner",
    "Orbiter",
    "PagesInventory",
    "PathDefender",
    "PaxleFramework",
    "Peew",
    "PhantomJS",
    "Pompos",
    "PostPost",
    "Qwantify",
    "Reaper",
    "RecipeRadar",
    "RedCarpet",
    "Riddler",
    "Ruxit Synthetic",
    "scooter",
    "Scrapy",
    "semanticdiscovery",
    "ShopSalad",
    "Simpy",
    "Site24x7",
    "Slack-ImgProxy",
    "sproose",
    "Steeler",
    "Tailsweep",
    "Thumbshots.ru",
    "Tiny Tiny RSS",
    "TLSProber",
    "Vagabondo",
    "voyager",
    "VSE",
    "WebCrunch",
    "WebIndexer",
    "WebThumb",
    "WhatWeb",
    "wminer",
    "Wotbox",
    "www.almaden.ibm.com",
    "Xenu Link Sleuth",
    "Xenu's Link Sleuth",
    "Y!J-BRI",
    "Y!J-BRW",
    "YahooMailProxy",
    "YahooSeeker",
    "Yeti",
    "YottaaMonitor",
    "Yowedo",
    "Zao",
    "ZyBorg",
];

fn is_bot_family(f: &str) -> bool {
    let l = f.to_ascii_lowercase();
    OTHER_BOTS.contains(&f)
        || [
            "bot", "spider", "crawl", "slurp", "robot", "archiver", "scraper",
        ]
        .iter()
        .any(|w| l.contains(w))
}

/// logveil's browser family for a uap family.
fn expected_browser(f: &str) -> &'static str {
    if let Some((_, ours)) = BROWSER_MAP.iter().find(|(u, _)| *u == f) {
        ours
    } else if HTTP_LIBRARIES.contains(&f) {
        "HTTP Library"
    } else if is_bot_family(f) {
        "Bot"
    } else {
        "Other"
    }
}

/// logveil's OS family for a uap OS family. uap-core does not tell iPadOS from iOS, so `iOS`
/// accepts either.
const OS_MAP: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("Windows Phone", "Windows Phone"),
    ("Windows Mobile", "Windows Phone"),
    ("Mac OS X", "Mac OS X"),
    ("iOS", "iOS"),
    ("Android", "Android"),
    ("Linux", "Linux"),
    ("Ubuntu", "Linux"),
    ("Debian", "Linux"),
    ("Gentoo", "Linux"),
    ("Red Hat", "Linux"),
    ("Mandriva", "Linux"),
    ("Fedora", "Linux"),
    ("Chrome OS", "ChromeOS"),
    ("FreeBSD", "BSD"),
    ("OpenBSD", "BSD"),
    ("NetBSD", "BSD"),
    ("BSD", "BSD"),
    ("BlackBerry OS", "BlackBerry"),
    ("BlackBerry Tablet OS", "BlackBerry"),
    ("Firefox OS", "Firefox OS"),
];

fn expected_os(f: &str) -> &'static str {
    OS_MAP
        .iter()
        .find(|(u, _)| *u == f)
        .map_or("Other", |(_, ours)| ours)
}

fn os_agrees(expected: &str, got: &str) -> bool {
    expected == got || (expected == "iOS" && got == "iPadOS")
}

/// OS majors are compared where logveil reports one (not for `Linux` or `Other`).
/// A uap major version that is a plain number (`XP`, `8.1` or `CE` are not compared).
fn numeric(major: &Option<String>) -> Option<u32> {
    major.as_deref().and_then(|m| m.parse().ok())
}

/// Families whose major version logveil reports (not `Bot`, `HTTP Library` or `Other`).
fn has_version(family: &str) -> bool {
    !matches!(family, "Bot" | "HTTP Library" | "Other")
}

/// With `LOGVEIL_UA_VERBOSE` set, every disagreement is printed with its user agent.
fn verbose(kind: &str, want: &str, got: &str, c: &Case) {
    if std::env::var_os("LOGVEIL_UA_VERBOSE").is_some() {
        println!(
            "{kind}\t{want}\t{got}\t{}\t{:?}\t{}",
            c.family, c.major, c.ua
        );
    }
}

fn pct(n: usize, d: usize) -> f64 {
    100.0 * n as f64 / d.max(1) as f64
}

/// Counts (expected, got) disagreements and prints the most frequent ones with the uap
/// families behind them.
fn print_confusion(what: &str, errors: &[(&'static str, &'static str, &str)]) {
    let mut by_pair: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (e, g, f) in errors {
        by_pair.entry((e, g)).or_default().push(f);
    }
    let mut pairs: Vec<_> = by_pair.into_iter().collect();
    pairs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    println!("{what}: top disagreements (expected -> got: count, uap families)");
    for ((e, g), fams) in pairs.iter().take(15) {
        let count = fams.len();
        let mut fams: Vec<&str> = fams.clone();
        fams.sort_unstable();
        fams.dedup();
        fams.truncate(8);
        println!("  {e} -> {g}: {count} ({})", fams.join(", "));
    }
}

#[test]
fn uap_core_browser_families() {
    let Some(dir) = corpus_dir() else { return };
    let cases = read_cases(&dir.join("useragent/test_ua.yaml"));
    let (mut fam_ok, mut major_ok, mut major_n) = (0, 0, 0);
    let mut errors = Vec::new();
    let mut major_errors = Vec::new();
    for c in &cases {
        let want = expected_browser(&c.family);
        let got = classify(&c.ua);
        if got.browser_family == want {
            fam_ok += 1;
            if let Some(m) = numeric(&c.major).filter(|_| has_version(want)) {
                major_n += 1;
                if got.browser_major == Some(m) {
                    major_ok += 1;
                } else {
                    verbose("bmajor", want, &format!("{:?}", got.browser_major), c);
                    major_errors.push((want, "wrong major", c.family.as_str()));
                }
            }
        } else {
            verbose("bfamily", want, got.browser_family, c);
            errors.push((want, got.browser_family, c.family.as_str()));
        }
    }
    let n = cases.len();
    println!(
        "uap browser family: {fam_ok}/{n} agree ({:.1}%)",
        pct(fam_ok, n)
    );
    println!(
        "uap browser major: {major_ok}/{major_n} agree ({:.1}%)",
        pct(major_ok, major_n)
    );
    print_confusion("browser family", &errors);
    print_confusion("browser major", &major_errors);
    // Measured: 1574/1601 (98.3%) and 143/146 (97.9%). The remaining disagreements, by kind:
    // - uap names an app or crawler we call a bot from a URL or crawler word in its agent
    //   (S3 Browser, Ghost, BlogBridge, WebZIP, Web-sniffer, WIRE, Argus, Pinterest/0.2,
    //   Datanyze) or the reverse (NewsGator, Reaper, RedCarpet, WebThumb name no crawler);
    // - `Google Web Preview` is a bot here, `Chrome` or `Other` in uap;
    // - rare shells: Opera Neon (`MMS/`), WebTV, BOLT, webOS's Safari, `ManagedBrowser` and
    //   AppleNews web views, `Jetpack by WordPress.com`, the Quest headset's browser (it also
    //   sends `SamsungBrowser/4.0`);
    // - majors: Safari's background fetches (`Safari/6533.18.5 CFNetwork/…`) report a WebKit
    //   build, not a version (we report none); IE Mobile 8 that also says `MSIEMobile 6.0`.
    assert!(pct(fam_ok, n) >= 98.0, "browser family accuracy fell");
    assert!(
        pct(major_ok, major_n) >= 97.0,
        "browser major accuracy fell"
    );
}

#[test]
fn uap_core_os_families() {
    let Some(dir) = corpus_dir() else { return };
    let cases = read_cases(&dir.join("useragent/test_os.yaml"));
    let (mut fam_ok, mut major_ok, mut major_n) = (0, 0, 0);
    let mut errors = Vec::new();
    let mut major_errors = Vec::new();
    for c in &cases {
        let want = expected_os(&c.family);
        let got = classify(&c.ua);
        if os_agrees(want, got.os_family) {
            fam_ok += 1;
            if let Some(m) = numeric(&c.major).filter(|_| !matches!(want, "Other" | "Linux")) {
                major_n += 1;
                if got.os_major == Some(m) {
                    major_ok += 1;
                } else {
                    verbose("omajor", want, &format!("{:?}", got.os_major), c);
                    major_errors.push((want, "wrong major", c.family.as_str()));
                }
            }
        } else {
            verbose("ofamily", want, got.os_family, c);
            errors.push((want, got.os_family, c.family.as_str()));
        }
    }
    let n = cases.len();
    println!("uap os family: {fam_ok}/{n} agree ({:.1}%)", pct(fam_ok, n));
    println!(
        "uap os major: {major_ok}/{major_n} agree ({:.1}%)",
        pct(major_ok, major_n)
    );
    print_confusion("os family", &errors);
    print_confusion("os major", &major_errors);
    // Measured: 476/483 (98.6%) and 262/266 (98.5%). The remaining disagreements: Citrix on
    // ChromeOS says `X11; Windows`; a bot's `Android` agent (uap: Other); classic Mac OS
    // (`Mac_PowerPC`, uap: Other, here Mac OS X); the Quest headset's `X11; Linux` (uap:
    // Android); a set-top box saying both `Windows 98` and
    // `Linux`; `Windows CE,BrailleNote` (uap: Windows, here Windows Phone). Majors: a Win32
    // agent uap calls 95, a proxy client naming Windows 10 before `Windows NT 6.2`, Darwin 9
    // (iOS 1 or 2, no major here) and an AWS SDK's `os/macos#22.4.0` (a Darwin version).
    assert!(pct(fam_ok, n) >= 98.0, "os family accuracy fell");
    assert!(pct(major_ok, major_n) >= 98.0, "os major accuracy fell");
}
