//! Keyed pseudonyms and network truncation.
//!
//! Each identifier kind (IP address, device id, session id, account id) gets its own subkey,
//! derived from the epoch's key (`blake3::derive_key`, or HMAC-SHA256 of the kind's context for
//! HMAC keys), so the same value under two kinds yields unrelated pseudonyms. A pseudonym is
//! the first 128 bits of the keyed hash, written as 32 lower-case hex digits. Subkeys are
//! zeroised when the pseudonymiser is dropped. IP addresses are canonicalised first (IPv4-mapped IPv6
//! is IPv4), and truncated to their network (/24 and /48 by default).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::{Algorithm, HEX, Key};

/// Identifier kinds with separate subkeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Ip,
    Device,
    Session,
    Account,
}

impl IdKind {
    fn context(self) -> &'static str {
        match self {
            IdKind::Ip => "logveil 2026 pseudonym ip v1",
            IdKind::Device => "logveil 2026 pseudonym device_id v1",
            IdKind::Session => "logveil 2026 pseudonym session_id v1",
            IdKind::Account => "logveil 2026 pseudonym account_id v1",
        }
    }
}

/// A pseudonym: 32 ASCII hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pseudonym([u8; 32]);

impl Pseudonym {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keyed hash behind a pseudonymiser, with one subkey per identifier kind.
#[derive(Clone)]
enum Mac {
    Blake3(Zeroizing<[[u8; 32]; 4]>),
    /// HMAC-SHA256 states already keyed with each subkey (cloned per value: no re-keying).
    HmacSha256(Box<[Hmac<Sha256>; 4]>),
}

/// Computes pseudonyms under one key.
#[derive(Clone)]
pub struct Pseudonymiser {
    key_id: String,
    mac: Mac,
}

impl Pseudonymiser {
    /// A pseudonymiser for `key`, or `None` if the key was shredded.
    pub fn try_new(key: &Key) -> Option<Pseudonymiser> {
        let secret = key.secret()?.bytes();
        let kinds = [IdKind::Ip, IdKind::Device, IdKind::Session, IdKind::Account];
        let mac = match key.algorithm() {
            Algorithm::Blake3 => Mac::Blake3(Zeroizing::new(
                kinds.map(|k| blake3::derive_key(k.context(), secret)),
            )),
            Algorithm::HmacSha256 => Mac::HmacSha256(Box::new(kinds.map(|k| {
                // Subkey = HMAC(key, context); the state keyed with it is what we keep.
                let mut sub = Zeroizing::new([0u8; 32]);
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
                    .expect("HMAC takes keys of any length");
                m.update(k.context().as_bytes());
                sub.copy_from_slice(&m.finalize().into_bytes());
                <Hmac<Sha256> as KeyInit>::new_from_slice(&sub[..])
                    .expect("HMAC takes keys of any length")
            }))),
        };
        Some(Pseudonymiser {
            key_id: key.id().to_string(),
            mac,
        })
    }

    /// A pseudonymiser for a key known to hold material (tests, the development key).
    ///
    /// # Panics
    /// If the key was shredded; use [`Pseudonymiser::try_new`] for keys from a ring.
    pub fn new(key: &Key) -> Pseudonymiser {
        Self::try_new(key).expect("key material present")
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Pseudonym of `value` as an identifier of `kind`.
    #[inline]
    pub fn pseudonym(&self, kind: IdKind, value: &[u8]) -> Pseudonym {
        let mut digest = [0u8; 32];
        match &self.mac {
            Mac::Blake3(sub) => {
                digest = *blake3::keyed_hash(&sub[kind as usize], value).as_bytes();
            }
            Mac::HmacSha256(states) => {
                let mut m = states[kind as usize].clone();
                m.update(value);
                digest.copy_from_slice(&m.finalize().into_bytes());
            }
        }
        let mut out = [0u8; 32];
        for (i, b) in digest[..16].iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 15) as usize];
        }
        Pseudonym(out)
    }

    /// Pseudonym of an IP address (canonical form: IPv4 as 4 bytes, IPv6 as 16).
    pub fn ip_pseudonym(&self, ip: IpAddr) -> Pseudonym {
        match canonical_ip(ip) {
            IpAddr::V4(a) => self.pseudonym(IdKind::Ip, &a.octets()),
            IpAddr::V6(a) => self.pseudonym(IdKind::Ip, &a.octets()),
        }
    }
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// IPv6 addresses that carry an IPv4 address become that IPv4 address, so that its network
/// is truncated as IPv4 (a /48 of a 6to4 address would otherwise hold the whole IPv4):
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`,
/// 6to4 `2002:aabb:ccdd::/48` and Teredo `2001:0::/32` (client address inverted in the last
/// 32 bits).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    let seg = v6.segments();
    let low32 = bits as u32;
    let ipv4_compatible = bits >> 32 == 0 && low32 > 1; // not :: or ::1
    let nat64 = bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000;
    let embedded = if ipv4_compatible || nat64 {
        Some(low32)
    } else if seg[0] == 0x2002 {
        Some(((seg[1] as u32) << 16) | seg[2] as u32) // 6to4
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        Some(!low32) // Teredo
    } else {
        None
    };
    match embedded {
        Some(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        None => IpAddr::V6(v6),
    }
}

/// Parses a client address as logs write it: plain IPv4 or IPv6 only (no ports, zones or
/// brackets, which a web server never writes in `$remote_addr`).
pub fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    if bytes.len() > 45 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The network of an address, e.g. `203.0.113.0/24` or `2001:db8:1::/48`. Bytes past `len`
/// are always zero, so the derived equality and hash are those of the text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    buf: [u8; 48],
    len: u8,
}

impl Network {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

/// Shows the network text (already truncated: no whole address).
impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

struct FixedBuf<'a> {
    buf: &'a mut [u8; 48],
    len: usize,
}

impl std::fmt::Write for FixedBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Prefix lengths for network truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for Truncation {
    fn default() -> Self {
        Truncation {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

impl Truncation {
    pub fn network(&self, ip: IpAddr) -> Network {
        let mut buf = [0u8; 48];
        let mut w = FixedBuf {
            buf: &mut buf,
            len: 0,
        };
        // Both forms fit in 48 bytes (longest: 39 for the address, 4 for "/128").
        let _ = match canonical_ip(ip) {
            IpAddr::V4(a) => {
                let p = self.ipv4_prefix.min(32);
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                write!(w, "{}/{}", Ipv4Addr::from(u32::from(a) & mask), p)
            }
            IpAddr::V6(a) => {
                let p = self.ipv6_prefix.min(128);
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                write!(w, "{}/{}", Ipv6Addr::from(u128::from(a) & mask), p)
            }
        };
        let len = w.len as u8;
        Network { buf, len }
    }
}

/// Pseudonym and network of one address.
#[derive(Clone, Copy)]
pub struct IpFacts {
    pub pseudonym: Pseudonym,
    pub network: Network,
}

/// Bounded cache from an address as written in the log to its facts: real traffic repeats
/// addresses heavily, and a hit costs one hash of a short byte string. Lives as long as the
/// pseudonymiser it belongs to (a key change means a new engine, hence a new cache).
pub struct IpCache {
    map: HashMap<Box<[u8]>, IpFacts, foldhash::fast::RandomState>,
    capacity: usize,
}

impl IpCache {
    pub fn new(capacity: usize) -> IpCache {
        IpCache {
            map: HashMap::with_capacity_and_hasher(1024, Default::default()),
            capacity,
        }
    }

    /// Forgets every entry (the key changed).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Facts for `raw`, or `None` if it is not an IP address.
    #[inline]
    pub fn lookup(&mut self, raw: &[u8], p: &Pseudonymiser, t: &Truncation) -> Option<IpFacts> {
        if let Some(f) = self.map.get(raw) {
            return Some(*f);
        }
        let ip = parse_ip(raw)?;
        let facts = IpFacts {
            pseudonym: p.ip_pseudonym(ip),
            network: t.network(ip),
        };
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        self.map.insert(raw.into(), facts);
        Some(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Pseudonymiser {
        Pseudonymiser::new(&Key::development())
    }

    #[test]
    fn kinds_do_not_link() {
        let p = p();
        let v = b"3f2a9c1e-0000-4000-8000-000000000001";
        assert_ne!(
            p.pseudonym(IdKind::Device, v),
            p.pseudonym(IdKind::Session, v)
        );
        assert_eq!(
            p.pseudonym(IdKind::Device, v),
            p.pseudonym(IdKind::Device, v)
        );
        assert_eq!(p.pseudonym(IdKind::Device, v).as_str().len(), 32);
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        let p = p();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(p.ip_pseudonym(a), p.ip_pseudonym(b));
        let t = Truncation::default();
        assert_eq!(t.network(b).as_str(), "192.0.2.0/24");
        assert_eq!(
            t.network("2001:db8:abcd:12::1".parse().unwrap()).as_str(),
            "2001:db8:abcd::/48"
        );
        let t0 = Truncation {
            ipv4_prefix: 0,
            ipv6_prefix: 128,
        };
        assert_eq!(t0.network(a).as_str(), "0.0.0.0/0");
        assert_eq!(
            t0.network("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap())
                .as_str(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"
        );
    }

    #[test]
    fn embedded_ipv4_is_truncated_as_ipv4() {
        let t = Truncation::default();
        for (v6, net) in [
            ("2002:c633:6465::1", "198.51.100.0/24"),
            ("64:ff9b::198.51.100.101", "198.51.100.0/24"),
            ("::198.51.100.101", "198.51.100.0/24"),
            ("2001:0:4136:e378:8000:63bf:39cc:9b9a", "198.51.100.0/24"),
            ("::1", "::/48"),
        ] {
            let ip: IpAddr = v6.parse().unwrap();
            assert_eq!(t.network(ip).as_str(), net, "{v6}");
        }
    }

    #[test]
    fn different_keys_and_algorithms_differ() {
        let a = Pseudonymiser::new(&Key::development());
        let k = Key::generate(Algorithm::Blake3, None, String::new()).unwrap();
        let b = Pseudonymiser::new(&k);
        assert_ne!(a.pseudonym(IdKind::Ip, b"x"), b.pseudonym(IdKind::Ip, b"x"));
        let h = Key::generate(Algorithm::HmacSha256, None, String::new()).unwrap();
        let h = Pseudonymiser::new(&h);
        let x = h.pseudonym(IdKind::Device, b"x");
        assert_eq!(x, h.pseudonym(IdKind::Device, b"x"));
        assert_ne!(x, h.pseudonym(IdKind::Session, b"x"));
        assert_eq!(x.as_str().len(), 32);
    }

    /// The HMAC-SHA256 primitive behind the HMAC pseudonymiser is the standard one (RFC 4231
    /// test case 2); the subkey derivation on top is covered by
    /// `different_keys_and_algorithms_differ`.
    #[test]
    fn hmac_sha256_is_the_standard_construction() {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            crate::keys::hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn cache_matches_direct_and_is_bounded() {
        let p = p();
        let t = Truncation::default();
        let mut c = IpCache::new(4);
        for i in 0..20u8 {
            let s = format!("10.0.{i}.1");
            let f = c.lookup(s.as_bytes(), &p, &t).unwrap();
            assert_eq!(f.pseudonym, p.ip_pseudonym(s.parse().unwrap()));
            assert!(c.map.len() <= 4);
        }
        assert!(c.lookup(b"not-an-ip", &p, &t).is_none());
        assert!(c.lookup(b"fe80::1%eth0", &p, &t).is_none());
    }
}
