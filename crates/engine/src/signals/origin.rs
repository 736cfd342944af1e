//! `origin.network_new` and `origin.client_mismatch`: where a message came
//! from, against where its sender's domain usually sends from.
//!
//! The origin is the first untrusted hop (see `Features`); the client is the
//! address in X-Originating-IP or a similar header. Each becomes network keys:
//! the prefix (IPv4 /24 and IPv6 /48 for origins, /16 and /32 for clients,
//! whose addresses move more), and `AS…` and `country:…` when a MaxMind-format
//! database is configured. The coarsest key available decides: country, then
//! ASN, then prefix.

use std::net::IpAddr;
use std::path::Path;

use gatehouse_graph::{Familiarity, Known, NetworkFamiliarity, keys};
use gatehouse_policy::Baseline;

use super::Fired;
use super::features::Features;

/// MaxMind-format databases (GeoLite2 or GeoIP2) for ASN and country.
///
/// NOTE: tested with databases built in the tests, not with a real GeoLite2 file.
pub struct GeoIp {
    asn: Option<maxminddb::Reader<Vec<u8>>>,
    country: Option<maxminddb::Reader<Vec<u8>>>,
}

/// A GeoIP database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open GeoIP database {path}: {source}; check the path, or remove the setting to judge networks by prefix only"
)]
pub struct GeoIpError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

impl GeoIp {
    /// Opens an ASN database, a country (or city) database, or both.
    pub fn open(asn: Option<&Path>, country: Option<&Path>) -> Result<GeoIp, GeoIpError> {
        let open = |path: &Path| {
            maxminddb::Reader::open_readfile(path).map_err(|source| GeoIpError {
                path: path.display().to_string(),
                source,
            })
        };
        Ok(GeoIp {
            asn: asn.map(open).transpose()?,
            country: country.map(open).transpose()?,
        })
    }

    /// Opens databases already in memory.
    pub fn from_bytes(asn: Option<Vec<u8>>, country: Option<Vec<u8>>) -> Result<GeoIp, GeoIpError> {
        let open = |bytes: Vec<u8>| {
            maxminddb::Reader::from_source(bytes).map_err(|source| GeoIpError {
                path: "(in memory)".to_owned(),
                source,
            })
        };
        Ok(GeoIp {
            asn: asn.map(open).transpose()?,
            country: country.map(open).transpose()?,
        })
    }

    fn asn(&self, ip: IpAddr) -> Option<u32> {
        let result = self.asn.as_ref()?.lookup(ip).ok()?;
        let record: maxminddb::geoip2::Asn<'_> = result.decode().ok()??;
        record.autonomous_system_number
    }

    fn country(&self, ip: IpAddr) -> Option<String> {
        let result = self.country.as_ref()?.lookup(ip).ok()?;
        let record: maxminddb::geoip2::Country<'_> = result.decode().ok()??;
        record.country.iso_code.map(str::to_owned)
    }
}

/// Relays whose Received hops are the organisation's own, in CIDR notation.
#[derive(Debug, Clone, Default)]
pub struct TrustedNetworks {
    networks: Vec<(IpAddr, u8)>,
}

/// A trusted network could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid trusted network `{0}`: write it in CIDR notation such as 203.0.113.0/24 or 2001:db8::/32"
)]
pub struct TrustedNetworkError(String);

impl TrustedNetworks {
    /// Parses networks such as `203.0.113.0/24`; a bare address is a single host.
    pub fn parse<S: AsRef<str>>(networks: &[S]) -> Result<TrustedNetworks, TrustedNetworkError> {
        let mut parsed = Vec::new();
        for text in networks {
            let text = text.as_ref().trim();
            let (address, length) = match text.split_once('/') {
                Some((address, length)) => (address, Some(length)),
                None => (text, None),
            };
            let ip: IpAddr = address
                .parse()
                .map_err(|_| TrustedNetworkError(text.to_owned()))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let length = match length {
                Some(length) => length
                    .parse::<u8>()
                    .ok()
                    .filter(|length| *length <= max)
                    .ok_or_else(|| TrustedNetworkError(text.to_owned()))?,
                None => max,
            };
            parsed.push((ip, length));
        }
        Ok(TrustedNetworks { networks: parsed })
    }

    /// Returns the loopback networks, 127.0.0.0/8 and ::1.
    pub fn loopback() -> TrustedNetworks {
        TrustedNetworks {
            networks: vec![
                (IpAddr::from([127, 0, 0, 0]), 8),
                (IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
            ],
        }
    }

    /// Returns whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .any(|(network, length)| match (network, ip) {
                (IpAddr::V4(network), IpAddr::V4(ip)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*length)).unwrap_or(0);
                    u32::from(*network) & mask == u32::from(ip) & mask
                }
                (IpAddr::V6(network), IpAddr::V6(ip)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*length)).unwrap_or(0);
                    u128::from(*network) & mask == u128::from(ip) & mask
                }
                _ => false,
            })
    }
}

/// An address with the network keys it is learned under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) ip: IpAddr,
    pub(crate) prefix: String,
    pub(crate) asn: Option<String>,
    pub(crate) country: Option<String>,
}

impl Located {
    /// Lists every key, prefix first.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys = vec![self.prefix.clone()];
        keys.extend(self.asn.clone());
        keys.extend(self.country.clone());
        keys
    }

    /// Returns the key that decides novelty: country, else ASN, else prefix.
    fn deciding_key(&self) -> &str {
        self.country
            .as_deref()
            .or(self.asn.as_deref())
            .unwrap_or(&self.prefix)
    }

    fn describe(&self) -> String {
        let mut parts = vec![self.prefix.clone()];
        parts.extend(self.asn.clone());
        parts.extend(self.country.clone());
        format!("{} ({})", self.ip, parts.join(", "))
    }
}

pub(crate) fn locate(ip: IpAddr, geoip: Option<&GeoIp>, client: bool) -> Located {
    Located {
        ip,
        prefix: if client {
            keys::client_network_prefix(ip)
        } else {
            keys::network_prefix(ip)
        },
        asn: geoip
            .and_then(|geoip| geoip.asn(ip))
            .map(|number| format!("AS{number}")),
        country: geoip
            .and_then(|geoip| geoip.country(ip))
            .map(|code| format!("country:{code}")),
    }
}

/// Returns the networks the domain usually uses when the located network is new for it, else `None`.
fn novelty(located: &Located, networks: &NetworkFamiliarity) -> Option<Vec<String>> {
    let deciding = located.deciding_key();
    let seen = networks
        .networks
        .iter()
        .any(|known| known.name == deciding && known.fact.is_some());
    if seen {
        return None;
    }
    // Only keys of the same kind as the deciding one are comparable.
    let same_kind = |known: &&Known| {
        if deciding.starts_with("country:") {
            known.name.starts_with("country:")
        } else if deciding.starts_with("AS") {
            known.name.starts_with("AS")
        } else {
            known.name.contains('/')
        }
    };
    let usual: Vec<String> = networks
        .known
        .iter()
        .filter(same_kind)
        .map(|known| known.name.clone())
        .collect();
    (!usual.is_empty()).then_some(usual)
}

pub(crate) fn fire(
    features: &Features,
    familiarity: &Familiarity,
    baseline: &Baseline,
    fired: &mut Vec<Fired>,
) {
    let domain_messages = familiarity
        .sender_domain
        .map(|fact| fact.inbound)
        .unwrap_or(0);
    if domain_messages < baseline.min_network_messages {
        return;
    }
    if let Some(origin) = &features.origin
        && let Some(usual) = novelty(origin, &familiarity.origin)
    {
        fired.push(Fired::new(
            "origin.network_new",
            format!(
                "mail from {} came through {}, a network never seen for it; it usually comes from {}",
                features.sender_domain,
                origin.describe(),
                usual.join(", ")
            ),
        ));
    }
    if let Some(client) = &features.client
        && let Some(usual) = novelty(client, &familiarity.client)
    {
        fired.push(Fired::new(
            "origin.client_mismatch",
            format!(
                "the submitting client {} differs from the clients {} usually uses ({})",
                client.describe(),
                features.sender_domain,
                usual.join(", ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_network_contains_its_hosts() {
        let trusted = TrustedNetworks::parse(&["203.0.113.0/24"]).expect("valid");
        assert!(trusted.contains("203.0.113.200".parse().expect("address")));
        assert!(!trusted.contains("203.0.114.1".parse().expect("address")));
    }

    #[test]
    fn trusted_ipv6_network() {
        let trusted = TrustedNetworks::parse(&["2001:db8::/32"]).expect("valid");
        assert!(trusted.contains("2001:db8:1::5".parse().expect("address")));
    }

    #[test]
    fn invalid_trusted_network_is_rejected() {
        assert!(TrustedNetworks::parse(&["203.0.113.0/33"]).is_err());
    }
}
