//! Addresses: the trusted proxies of single sign-on as address ranges (CIDR), and a TCP peer's
//! address as Node reports it (`::ffff:10.0.0.7` is the IPv4 address it carries).

use std::net::IpAddr;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.2`, `::1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s.trim(), None),
        };
        let net = peer_address(addr)?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                b.parse::<u8>().ok().filter(|n| *n <= max)?
            }
            Some(_) => return None,
        };
        Some(Cidr { net, bits })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// A peer address as Node gives it (`req.socket.remoteAddress`), an IPv4-mapped IPv6 address
/// taken as the IPv4 address it is; `None` when it is not an address.
pub fn peer_address(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        peer_address(s).unwrap()
    }

    #[test]
    fn ranges_and_single_addresses() {
        let lo = Cidr::parse("127.0.0.2").unwrap();
        assert!(lo.contains(&ip("127.0.0.2")));
        assert!(lo.contains(&ip("::ffff:127.0.0.2")));
        assert!(!lo.contains(&ip("127.0.0.1")));
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(&ip("10.200.3.4")));
        assert!(!ten.contains(&ip("11.0.0.1")));
        let odd = Cidr::parse("192.168.1.128/25").unwrap();
        assert!(odd.contains(&ip("192.168.1.200")));
        assert!(!odd.contains(&ip("192.168.1.100")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(&ip("fd12::1")));
        assert!(!v6.contains(&ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "example.com",
            "::1/129",
            "1.2.3.4/x",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
        assert!(peer_address("not an address").is_none());
    }
}
