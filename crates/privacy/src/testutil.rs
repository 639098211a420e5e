//! Test-only helpers shared by the privacy crate's unit tests: proptest strategies for canaries.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

pub(crate) fn ipv4_canary() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string())
}

pub(crate) fn ipv6_canary() -> impl Strategy<Value = String> {
    (any::<[u16; 8]>(), 0usize..8, 0usize..8).prop_map(|(mut segs, start, len)| {
        for s in segs.iter_mut().skip(start).take(len) {
            *s = 0;
        }
        Ipv6Addr::from(segs).to_string()
    })
}

pub(crate) fn uuid_canary() -> impl Strategy<Value = String> {
    (any::<u128>(), any::<bool>()).prop_map(|(v, upper)| {
        let h = format!("{v:032x}");
        let u = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
        if upper { u.to_ascii_uppercase() } else { u }
    })
}

pub(crate) fn email_canary() -> impl Strategy<Value = String> {
    "[a-z]{3,8}@[a-z]{3,8}\\.(com|org)"
}

pub(crate) fn canary() -> impl Strategy<Value = String> {
    prop_oneof![ipv4_canary(), ipv6_canary(), uuid_canary(), email_canary()]
}
