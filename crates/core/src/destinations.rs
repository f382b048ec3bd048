//! Where the server may send requests on an admin's say-so (a bot's `forward_url`): public addresses only, so
//! that a URL cannot make the server reach its own machine, its private network or a cloud metadata service
//! (`169.254.169.254`). A backend on a private address is allowed on purpose by listing its host in
//! `FORWARD_ALLOWED_HOSTS`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Hosts an admin allowed to be private (names compared without case, addresses as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    allowed_private: Vec<String>,
}

impl Destinations {
    /// A policy allowing `allowed_private` hosts besides public ones.
    pub fn new(allowed_private: impl IntoIterator<Item = String>) -> Self {
        Self {
            allowed_private: allowed_private
                .into_iter()
                .map(|host| {
                    host.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|host| !host.is_empty())
                .collect(),
        }
    }

    /// Whether `host` (as in a URL, IPv6 in brackets or not) was allowed on purpose.
    pub fn allowed_on_purpose(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allowed_private.contains(&host)
    }

    /// Whether a request to `host` may be made before resolving it: an allowed host, a public address, or a name
    /// that is not obviously local (its addresses are checked again when it is resolved).
    pub fn host_permitted(&self, host: &str) -> bool {
        if self.allowed_on_purpose(host) {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(address) => is_public(address),
            Err(_) => !is_local_name(bare),
        }
    }

    /// Whether a resolved address of `host` may be connected to.
    pub fn address_permitted(&self, host: &str, address: IpAddr) -> bool {
        self.allowed_on_purpose(host) || is_public(address)
    }
}

/// Names that always mean this machine or a private network.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
        || !name.contains('.')
}

/// Whether `address` is reachable on the public internet (not loopback, private, link-local, shared, reserved,
/// documentation, multicast or unspecified; IPv4 inside IPv6 judged as IPv4).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, _, _] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && address.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && address.segments()[1] == 0xff9b) // NAT64 of possibly private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_are_refused_unless_allowed() {
        let policy = Destinations::default();
        for host in [
            "169.254.169.254",
            "127.0.0.1",
            "[::1]",
            "::1",
            "10.1.2.3",
            "192.168.0.10",
            "172.16.5.4",
            "100.64.0.1",
            "0.0.0.0",
            "[::ffff:127.0.0.1]",
            "[fd00::1]",
            "[fe80::1]",
            "localhost",
            "redis.internal",
            "printer.local",
            "redis",
        ] {
            assert!(!policy.host_permitted(host), "{host} must be refused");
        }
        for host in ["bot.example.com", "93.184.216.34", "[2606:4700::1111]"] {
            assert!(policy.host_permitted(host), "{host} is public");
        }
        let allowed = Destinations::new([
            "127.0.0.1".to_owned(),
            "Bot-Backend".to_owned(),
            "[::1]".to_owned(),
        ]);
        assert!(allowed.host_permitted("127.0.0.1"));
        assert!(allowed.host_permitted("bot-backend"));
        assert!(allowed.host_permitted("[::1]"));
        assert!(!allowed.host_permitted("10.0.0.1"));
        assert!(allowed.address_permitted("bot-backend", "10.0.0.7".parse().unwrap()));
        assert!(!allowed.address_permitted("evil.example", "10.0.0.7".parse().unwrap()));
    }
}
