//! dns-01 built in: the TXT records put in place by RFC 2136 updates, and the wait until every
//! name server of the zone answers them, instead of a fixed sleep.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::acme::text::shown;
use crate::config::DnsConfig;
use crate::dns::{self, Change, DnsError, RData, TsigKey};

/// A TXT record that dns-01 needs: `_acme-challenge.<name>` and the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxtRecord {
    pub name: String,
    pub value: String,
}

/// The zone that holds `name`: the owner of the SOA record `server` gives for it, in its
/// answer or in its authority section, walking up the labels when it gives none.
pub fn zone_of(server: SocketAddr, name: &str, recursive: bool) -> Result<String, DnsError> {
    let mut candidate = dns::normal(name);
    loop {
        let answer = dns::query(server, &candidate, dns::SOA, recursive)?;
        let soa = answer
            .answers
            .iter()
            .chain(&answer.authority)
            .find(|r| r.rtype == dns::SOA);
        if let Some(soa) = soa {
            // The zone goes into messages and the update: a name server's word, checked.
            if !soa.name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(DnsError(format!(
                    "DNS server {server} named the zone of {candidate} \"{}\", which is no name",
                    shown(&soa.name)
                )));
            }
            return Ok(soa.name.clone());
        }
        match answer.rcode {
            0 | 3 => {}
            rcode => {
                return Err(DnsError(format!(
                    "DNS server {server} answered {} for the SOA of {candidate}",
                    dns::rcode_name(rcode)
                )));
            }
        }
        match candidate.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => candidate = parent.to_string(),
            _ => {
                return Err(DnsError(format!(
                    "DNS server {server} knows no zone for {name}"
                )));
            }
        }
    }
}

/// Records by the zone `server` holds them in, for [`add`] and [`remove`].
pub type Added = Vec<(String, Vec<TxtRecord>)>;

/// Finds the zone of every record on `server`.
pub fn by_zone(server: SocketAddr, records: &[TxtRecord]) -> Result<Added, DnsError> {
    let mut by_zone: BTreeMap<String, Vec<TxtRecord>> = BTreeMap::new();
    for r in records {
        let zone = zone_of(server, &r.name, false)?;
        by_zone.entry(zone).or_default().push(r.clone());
    }
    Ok(by_zone.into_iter().collect())
}

/// Adds the records by RFC 2136 updates to `server`, one update per zone.
pub fn add(server: SocketAddr, key: &TsigKey, ttl: u32, added: &Added) -> Result<(), DnsError> {
    for (zone, records) in added {
        let changes: Vec<Change> = records
            .iter()
            .map(|r| Change::AddTxt {
                name: r.name.clone(),
                ttl,
                value: r.value.clone(),
            })
            .collect();
        dns::update(server, zone, &changes, key)?;
    }
    Ok(())
}

/// Deletes what [`add`] added, record by record; tries every zone, returns the first error.
pub fn remove(server: SocketAddr, key: &TsigKey, added: &Added) -> Result<(), DnsError> {
    let mut first = Ok(());
    for (zone, records) in added {
        let changes: Vec<Change> = records
            .iter()
            .map(|r| Change::DeleteTxt {
                name: r.name.clone(),
                value: r.value.clone(),
            })
            .collect();
        if let Err(e) = dns::update(server, zone, &changes, key)
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

/// The name servers to ask for `name`: `DNS_CHECK_SERVERS`, else the zone's NS records and
/// their addresses, looked up through the resolver.
pub fn servers_for(config: &DnsConfig, name: &str) -> Result<Vec<SocketAddr>, DnsError> {
    if !config.check_servers.is_empty() {
        return Ok(config.check_servers.clone());
    }
    let resolver = config.resolver.or_else(dns::system_resolver).ok_or_else(|| {
        DnsError("no DNS resolver to find the zone's name servers: set DNS_RESOLVER or DNS_CHECK_SERVERS".into())
    })?;
    let zone = zone_of(resolver, name, true)?;
    let ns = dns::query(resolver, &zone, dns::NS, true)?;
    let mut servers = Vec::new();
    for record in ns.answers.iter().filter(|r| r.rtype == dns::NS) {
        let RData::Ns(host) = &record.data else {
            continue;
        };
        // Glue in the answer's additional section saves a question.
        let glue: Vec<IpAddr> = ns
            .additional
            .iter()
            .filter(|r| &r.name == host)
            .filter_map(|r| match r.data {
                RData::A(ip) => Some(IpAddr::V4(ip)),
                RData::Aaaa(ip) => Some(IpAddr::V6(ip)),
                _ => None,
            })
            .collect();
        let ips = if glue.is_empty() {
            let mut found = Vec::new();
            for rtype in [dns::A, dns::AAAA] {
                let answer = dns::query(resolver, host, rtype, true)?;
                found.extend(answer.answers.iter().filter_map(|r| match r.data {
                    RData::A(ip) => Some(IpAddr::V4(ip)),
                    RData::Aaaa(ip) => Some(IpAddr::V6(ip)),
                    _ => None,
                }));
                if !found.is_empty() {
                    break;
                }
            }
            found
        } else {
            glue
        };
        servers.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, 53)));
    }
    if servers.is_empty() {
        return Err(DnsError(format!(
            "found no name server for zone {zone} through {resolver}"
        )));
    }
    servers.sort();
    servers.dedup();
    Ok(servers)
}

/// Asks every name server directly until each answers every record, from soon to every 2 s,
/// and gives up at `DNS_WAIT` naming the server that still lacks a record.
pub fn wait_until_visible(config: &DnsConfig, records: &[TxtRecord]) -> Result<(), DnsError> {
    let deadline = Instant::now() + config.wait;
    let mut pending: Vec<(SocketAddr, &TxtRecord)> = Vec::new();
    for r in records {
        for server in servers_for(config, &r.name)? {
            pending.push((server, r));
        }
    }
    let mut pause = Duration::from_millis(50);
    loop {
        let mut last_seen = String::new();
        let mut still = Vec::new();
        for (server, r) in pending {
            let seen = match dns::query(server, &r.name, dns::TXT, false) {
                Ok(answer) => {
                    let values: Vec<String> = answer
                        .answers
                        .iter()
                        .filter_map(|rec| match &rec.data {
                            RData::Txt(v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    if values.contains(&r.value) {
                        continue;
                    }
                    if values.is_empty() {
                        format!("it answers {}", dns::rcode_name(answer.rcode))
                    } else {
                        format!("it has only {}", shown(&values.join(", ")))
                    }
                }
                Err(e) => e.0,
            };
            last_seen = format!(
                "name server {server} does not have the TXT record {} yet ({seen})",
                r.name
            );
            still.push((server, r));
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DnsError(format!(
                "{last_seen} after {} s (DNS_WAIT); check that the records reach every \
                 authoritative server",
                config.wait.as_secs()
            )));
        }
        pending = still;
        crate::stop::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        if crate::stop::requested() {
            return Err(DnsError(crate::stop::why()));
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
