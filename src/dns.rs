//! The DNS we need for dns-01, as a small client of our own: queries over UDP with TCP
//! fallback, the records we read (A, AAAA, NS, SOA, TXT, CNAME), and RFC 2136 updates signed
//! with TSIG (RFC 8945).

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
const TSIG: u16 = 250;
const CLASS_IN: u16 = 1;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;
const OPCODE_UPDATE: u16 = 5;

/// A DNS failure, naming the server and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError(pub String);

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, DnsError>;

/// The data of a record, for the types we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(String),
    Cname(String),
    Soa,
    /// The character-strings of one TXT record, joined.
    Txt(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower case, without the final dot.
    pub name: String,
    pub rtype: u16,
    pub data: RData,
}

/// An answer: its response code and the records of each section.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub rcode: u8,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

/// The name of a response code, for messages.
pub fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        n => format!("RCODE {n}"),
    }
}

/// A name without its final dot, lower-cased: how names are compared here.
pub fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in normal(name).split('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
}

/// Reads a possibly compressed name at `pos`; returns it and the position after it.
fn decode_name(msg: &[u8], mut pos: usize) -> Result<(String, usize)> {
    let bad = || DnsError("a malformed name in a DNS answer".into());
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos).ok_or_else(bad)? as usize;
        if len == 0 {
            let after = end.unwrap_or(pos + 1);
            return Ok((labels.join(".").to_ascii_lowercase(), after));
        }
        if len & 0xc0 == 0xc0 {
            let low = *msg.get(pos + 1).ok_or_else(bad)? as usize;
            end.get_or_insert(pos + 2);
            pos = ((len & 0x3f) << 8) | low;
            continue;
        }
        let label = msg.get(pos + 1..pos + 1 + len).ok_or_else(bad)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += 1 + len;
    }
    Err(bad())
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| DnsError("a DNS answer ends too early".into()))
}

fn parse_record(msg: &[u8], pos: usize) -> Result<(Record, usize)> {
    let (name, pos) = decode_name(msg, pos)?;
    let rtype = u16_at(msg, pos)?;
    let rdlen = u16_at(msg, pos + 8)? as usize;
    let start = pos + 10;
    let rdata = msg
        .get(start..start + rdlen)
        .ok_or_else(|| DnsError("a DNS answer ends inside a record".into()))?;
    let data = match rtype {
        A if rdlen == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        AAAA if rdlen == 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rdata);
            RData::Aaaa(Ipv6Addr::from(b))
        }
        NS => RData::Ns(decode_name(msg, start)?.0),
        CNAME => RData::Cname(decode_name(msg, start)?.0),
        SOA => RData::Soa,
        TXT => {
            let mut text = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let n = rdata[i] as usize;
                text.extend_from_slice(rdata.get(i + 1..i + 1 + n).unwrap_or_default());
                i += 1 + n;
            }
            RData::Txt(String::from_utf8_lossy(&text).into_owned())
        }
        _ => RData::Other,
    };
    Ok((Record { name, rtype, data }, start + rdlen))
}

/// Parses a whole message; `expect_id` must match.
pub(crate) fn parse(msg: &[u8], expect_id: u16) -> Result<Answer> {
    if msg.len() < 12 || u16_at(msg, 0)? != expect_id {
        return Err(DnsError("an answer to another question".into()));
    }
    let flags = u16_at(msg, 2)?;
    let counts: Vec<usize> = (0..4)
        .map(|i| u16_at(msg, 4 + 2 * i).map(usize::from))
        .collect::<Result<_>>()?;
    let mut pos = 12;
    for _ in 0..counts[0] {
        pos = decode_name(msg, pos)?.1 + 4;
    }
    let mut sections: [Vec<Record>; 3] = Default::default();
    for (section, count) in sections.iter_mut().zip(&counts[1..]) {
        for _ in 0..*count {
            let (record, next) = parse_record(msg, pos)?;
            section.push(record);
            pos = next;
        }
    }
    let [answers, authority, additional] = sections;
    Ok(Answer {
        rcode: (flags & 0x0f) as u8,
        answers,
        authority,
        additional,
    })
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

/// Sends `msg` to `server` over UDP, and over TCP when the answer is truncated or too big.
fn exchange(server: SocketAddr, msg: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| DnsError(format!("DNS server {server}: {e}"));
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(server)
    } else {
        "[::]:0".parse().unwrap_or(server)
    };
    let socket = UdpSocket::bind(bind).map_err(fail)?;
    socket.set_read_timeout(Some(timeout)).map_err(fail)?;
    socket.connect(server).map_err(fail)?;
    let mut buf = vec![0u8; 4096];
    let mut answer = None;
    for _ in 0..2 {
        socket.send(msg).map_err(fail)?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                answer = Some(buf[..n].to_vec());
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(fail(e)),
        }
    }
    match answer {
        Some(a) if a.len() > 2 && a[2] & 0x02 == 0 => Ok(a),
        // Truncated, or no answer over UDP: ask over TCP.
        _ => {
            let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(fail)?;
            stream.set_read_timeout(Some(timeout)).map_err(fail)?;
            let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(msg);
            stream.write_all(&framed).map_err(fail)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).map_err(fail)?;
            let mut out = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut out).map_err(fail)?;
            Ok(out)
        }
    }
}

/// Asks `server` for the `rtype` records of `name` (recursion desired when `recursive`).
pub fn query(server: SocketAddr, name: &str, rtype: u16, recursive: bool) -> Result<Answer> {
    let id = random_id();
    let mut msg = Vec::with_capacity(64);
    msg.extend(id.to_be_bytes());
    msg.extend(if recursive { 0x0100u16 } else { 0 }.to_be_bytes());
    msg.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut msg);
    msg.extend(rtype.to_be_bytes());
    msg.extend(CLASS_IN.to_be_bytes());
    let raw = exchange(server, &msg, Duration::from_secs(3))?;
    parse(&raw, id)
}

/// TSIG algorithms, by the names BIND's key files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithm {
    pub fn parse(name: &str) -> Option<TsigAlgorithm> {
        match normal(name).as_str() {
            "hmac-sha1" => Some(TsigAlgorithm::HmacSha1),
            "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
            "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
            "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha1 => "hmac-sha1",
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            TsigAlgorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
            TsigAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
            TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A TSIG key. Its `Debug` shows the name and algorithm, never the secret.
#[derive(Clone)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

/// What is wrong with a TSIG key's parts, without their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigKeyError {
    Algorithm,
    Secret(&'static str),
}

impl fmt::Display for TsigKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsigKeyError::Algorithm => f.write_str(
                "algorithm is not one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1",
            ),
            TsigKeyError::Secret(what) => write!(f, "secret {what}"),
        }
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TsigKey({} {})", self.name, self.algorithm.name())
    }
}

impl TsigKey {
    /// A key from its name, algorithm and base64 secret. An error says which of the two is
    /// wrong, never what it is.
    pub fn new(
        name: &str,
        algorithm: &str,
        secret_b64: &str,
    ) -> std::result::Result<TsigKey, TsigKeyError> {
        let algorithm = TsigAlgorithm::parse(algorithm).ok_or(TsigKeyError::Algorithm)?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_b64.trim())
            .map_err(|_| TsigKeyError::Secret("is not base64"))?;
        if secret.is_empty() {
            return Err(TsigKeyError::Secret("is empty"));
        }
        Ok(TsigKey {
            name: normal(name),
            algorithm,
            secret,
        })
    }

    /// The first key of a BIND key file, as `tsig-keygen` writes it and `nsupdate -k` reads it:
    /// `key "name" { algorithm hmac-sha256; secret "..."; };`. An error names the line of the
    /// file and never holds any of its text, which holds the secret.
    pub fn from_bind_file(text: &str) -> std::result::Result<TsigKey, String> {
        // Every word with its line number, comments left out.
        let mut tokens: Vec<(&str, usize)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            let line = line.split('#').next().unwrap_or("");
            let mut rest = line;
            while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
                rest = &rest[start..];
                let len = match rest.find(|c: char| c.is_whitespace() || "{};".contains(c)) {
                    Some(0) => 1,
                    Some(n) => n,
                    None => rest.len(),
                };
                tokens.push((&rest[..len], i + 1));
                rest = &rest[len..];
            }
        }
        let at = tokens
            .iter()
            .position(|(t, _)| *t == "key")
            .ok_or("no key statement in the key file")?;
        let key_line = tokens[at].1;
        let (name, _) = tokens
            .get(at + 1)
            .ok_or(format!("line {key_line}: the key has no name"))?;
        let value = |word: &str| {
            tokens[at..]
                .windows(2)
                .find(|w| w[0].0 == word)
                .map(|w| (w[1].0.trim_matches('"'), w[1].1))
        };
        let (algorithm, algorithm_line) =
            value("algorithm").ok_or(format!("line {key_line}: the key has no algorithm"))?;
        let (secret, secret_line) =
            value("secret").ok_or(format!("line {key_line}: the key has no secret"))?;
        TsigKey::new(name.trim_matches('"'), algorithm, secret).map_err(|e| match e {
            TsigKeyError::Algorithm => format!("line {algorithm_line}: the {e}"),
            TsigKeyError::Secret(_) => format!("line {secret_line}: the {e}"),
        })
    }

    /// The TSIG variables (RFC 8945 §4.3.3) that follow the message in the MAC input.
    fn variables(&self, time: u64, fudge: u16, error: u16) -> Vec<u8> {
        let mut v = Vec::new();
        encode_name(&self.name, &mut v);
        v.extend(CLASS_ANY.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        encode_name(self.algorithm.name(), &mut v);
        v.extend(&time.to_be_bytes()[2..]);
        v.extend(fudge.to_be_bytes());
        v.extend(error.to_be_bytes());
        v.extend(0u16.to_be_bytes());
        v
    }

    /// Appends a TSIG record to `msg` (whose additional count it raises); returns the MAC.
    fn sign(&self, msg: &mut Vec<u8>, time: u64) -> Vec<u8> {
        let fudge = 300;
        let key = hmac::Key::new(self.algorithm.ring(), &self.secret);
        let mut input = msg.clone();
        input.extend(self.variables(time, fudge, 0));
        let mac = hmac::sign(&key, &input).as_ref().to_vec();
        let id = [msg[0], msg[1]];
        let mut rdata = Vec::new();
        encode_name(self.algorithm.name(), &mut rdata);
        rdata.extend(&time.to_be_bytes()[2..]);
        rdata.extend(fudge.to_be_bytes());
        rdata.extend((mac.len() as u16).to_be_bytes());
        rdata.extend(&mac);
        rdata.extend(id);
        rdata.extend([0, 0, 0, 0]);
        encode_name(&self.name, msg);
        msg.extend(TSIG.to_be_bytes());
        msg.extend(CLASS_ANY.to_be_bytes());
        msg.extend(0u32.to_be_bytes());
        msg.extend((rdata.len() as u16).to_be_bytes());
        msg.extend(rdata);
        let arcount = u16::from_be_bytes([msg[10], msg[11]]) + 1;
        msg[10..12].copy_from_slice(&arcount.to_be_bytes());
        mac
    }

    /// Checks the TSIG record that ends a response to a request signed with `request_mac`.
    /// Returns the TSIG error code the server set (0 when it accepted our key).
    pub(crate) fn verify(&self, response: &[u8], request_mac: &[u8]) -> Result<u16> {
        let arcount = u16_at(response, 10)?;
        if arcount == 0 {
            return Err(DnsError("the answer is not signed".into()));
        }
        // Find the last record: walk every section.
        let counts: usize = (2..6)
            .map(|i| u16_at(response, 2 * i).map(usize::from))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .skip(1)
            .sum();
        let mut pos = 12;
        for _ in 0..u16_at(response, 4)? {
            pos = decode_name(response, pos)?.1 + 4;
        }
        let mut last = pos;
        for _ in 0..counts {
            last = pos;
            pos = parse_record(response, pos)?.1;
        }
        let (name, rdata_at) = decode_name(response, last)?;
        if u16_at(response, rdata_at)? != TSIG || name != self.name {
            return Err(DnsError("the answer's last record is not our TSIG".into()));
        }
        let rd = rdata_at + 10;
        let (_, p) = decode_name(response, rd)?;
        let time = response
            .get(p..p + 6)
            .map(|b| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            .ok_or_else(|| DnsError("a short TSIG record".into()))?;
        let fudge = u16_at(response, p + 6)?;
        let mac_len = u16_at(response, p + 8)? as usize;
        let mac = response
            .get(p + 10..p + 10 + mac_len)
            .ok_or_else(|| DnsError("a short TSIG record".into()))?;
        let original_id = u16_at(response, p + 10 + mac_len)?;
        let error = u16_at(response, p + 12 + mac_len)?;
        if mac_len == 0 {
            // RFC 8945 §5.3.2: only an error (BADKEY, BADSIG) comes back unsigned; an empty MAC
            // that claims success is no signature at all.
            return match error {
                0 => Err(DnsError("the answer's TSIG record has no signature".into())),
                error => Ok(error),
            };
        }
        let mut input = (request_mac.len() as u16).to_be_bytes().to_vec();
        input.extend(request_mac);
        let mut unsigned = response[..last].to_vec();
        unsigned[0..2].copy_from_slice(&original_id.to_be_bytes());
        unsigned[10..12].copy_from_slice(&(arcount - 1).to_be_bytes());
        input.extend(unsigned);
        input.extend(self.variables(time, fudge, error));
        let key = hmac::Key::new(self.algorithm.ring(), &self.secret);
        hmac::verify(&key, &input, mac)
            .map_err(|_| DnsError("the answer's TSIG signature does not verify".into()))?;
        Ok(error)
    }

    /// `reply` with a TSIG record appended, as a name server signs its answer at `time` to a
    /// request signed with `request_mac` (RFC 8945 §5.3): what [`TsigKey::verify`] checks.
    /// None when `reply` has no header or the MAC or record would not fit their fields.
    #[cfg(any(fuzzing, test))]
    pub(crate) fn sign_reply(
        &self,
        reply: &[u8],
        request_mac: &[u8],
        time: u64,
    ) -> Option<Vec<u8>> {
        let fudge = 300;
        let arcount = u16_at(reply, 10).ok()?.checked_add(1)?;
        let mut input = u16::try_from(request_mac.len())
            .ok()?
            .to_be_bytes()
            .to_vec();
        input.extend(request_mac);
        input.extend(reply);
        input.extend(self.variables(time, fudge, 0));
        let mac = hmac::sign(&hmac::Key::new(self.algorithm.ring(), &self.secret), &input);
        let mut rdata = Vec::new();
        encode_name(self.algorithm.name(), &mut rdata);
        rdata.extend(&time.to_be_bytes()[2..]);
        rdata.extend(fudge.to_be_bytes());
        rdata.extend(u16::try_from(mac.as_ref().len()).ok()?.to_be_bytes());
        rdata.extend(mac.as_ref());
        rdata.extend(&reply[..2]);
        rdata.extend([0, 0, 0, 0]);
        let mut signed = reply.to_vec();
        encode_name(&self.name, &mut signed);
        signed.extend(TSIG.to_be_bytes());
        signed.extend(CLASS_ANY.to_be_bytes());
        signed.extend(0u32.to_be_bytes());
        signed.extend(u16::try_from(rdata.len()).ok()?.to_be_bytes());
        signed.extend(rdata);
        signed[10..12].copy_from_slice(&arcount.to_be_bytes());
        Some(signed)
    }
}

fn tsig_error_name(code: u16) -> String {
    match code {
        16 => "BADSIG (the secret differs)".into(),
        17 => "BADKEY (the server does not know this key name or algorithm)".into(),
        18 => "BADTIME (the clocks differ by more than 5 minutes)".into(),
        n => format!("TSIG error {n}"),
    }
}

/// One change of an RFC 2136 update: a TXT value added or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    AddTxt {
        name: String,
        ttl: u32,
        value: String,
    },
    DeleteTxt {
        name: String,
        value: String,
    },
}

/// Sends one RFC 2136 update of `zone` to `server`, signed with `key`, and checks the answer
/// and its signature.
pub fn update(server: SocketAddr, zone: &str, changes: &[Change], key: &TsigKey) -> Result<()> {
    let id = random_id();
    let mut msg = Vec::new();
    msg.extend(id.to_be_bytes());
    msg.extend((OPCODE_UPDATE << 11).to_be_bytes());
    msg.extend(1u16.to_be_bytes());
    msg.extend(0u16.to_be_bytes());
    msg.extend((changes.len() as u16).to_be_bytes());
    msg.extend(0u16.to_be_bytes());
    encode_name(zone, &mut msg);
    msg.extend(SOA.to_be_bytes());
    msg.extend(CLASS_IN.to_be_bytes());
    for change in changes {
        let (name, class, ttl, value) = match change {
            Change::AddTxt { name, ttl, value } => (name, CLASS_IN, *ttl, value),
            Change::DeleteTxt { name, value } => (name, CLASS_NONE, 0, value),
        };
        encode_name(name, &mut msg);
        msg.extend(TXT.to_be_bytes());
        msg.extend(class.to_be_bytes());
        msg.extend(ttl.to_be_bytes());
        let bytes = value.as_bytes();
        let mut rdata = Vec::new();
        for chunk in bytes.chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend(chunk);
        }
        msg.extend((rdata.len() as u16).to_be_bytes());
        msg.extend(rdata);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mac = key.sign(&mut msg, now);
    let raw = exchange(server, &msg, Duration::from_secs(5))?;
    let answer = parse(&raw, id)?;
    let who = format!("DNS server {server} (zone {zone}, key {})", key.name);
    let tsig_error = key.verify(&raw, &mac);
    match (answer.rcode, tsig_error) {
        (_, Ok(e)) if e != 0 => Err(DnsError(format!(
            "{who} refused the update: {}",
            tsig_error_name(e)
        ))),
        (0, Ok(_)) => Ok(()),
        (rcode, Ok(_)) => Err(DnsError(format!(
            "{who} refused the update: {}",
            rcode_name(rcode)
        ))),
        (9, Err(_)) => Err(DnsError(format!(
            "{who} refused the update: NOTAUTH (it does not accept this key for the zone)"
        ))),
        (0, Err(e)) => Err(DnsError(format!("{who}: {e}"))),
        (rcode, Err(_)) => Err(DnsError(format!(
            "{who} refused the update: {}",
            rcode_name(rcode)
        ))),
    }
}

/// `host:port`, `host` (port 53), `[v6]:port` or a bare IPv6 address, as configs give servers.
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    None
}

/// The first `nameserver` of /etc/resolv.conf.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|s| parse_server(s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_and_decode_with_compression() {
        let mut msg = vec![0u8; 12];
        encode_name("Example.ORG.", &mut msg);
        assert_eq!(&msg[12..], b"\x07example\x03org\x00");
        // A pointer to offset 12 after a label.
        msg.extend(b"\x03www\xc0\x0c");
        let (name, end) = decode_name(&msg, 25).unwrap();
        assert_eq!(name, "www.example.org");
        assert_eq!(end, msg.len());
        // A pointer loop is refused, not followed for ever.
        let looped = [0xc0u8, 0x00];
        assert!(decode_name(&looped, 0).is_err());
    }

    #[test]
    fn a_bind_key_file_is_read() {
        let text = r#"key "acme-update" {
	algorithm hmac-sha256;
	secret "c2VjcmV0IHNlY3JldCBzZWNyZXQ=";
};
"#;
        let key = TsigKey::from_bind_file(text).unwrap();
        assert_eq!(key.name, "acme-update");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(key.secret, b"secret secret secret");
        assert_eq!(format!("{key:?}"), "TsigKey(acme-update hmac-sha256)");
        assert!(TsigKey::from_bind_file("key x { algorithm md5; secret \"YQ==\"; };").is_err());
        assert!(TsigKey::new("k", "hmac-sha512", "not base64!").is_err());
    }

    #[test]
    fn servers_in_every_written_form() {
        assert_eq!(parse_server("127.0.0.1"), "127.0.0.1:53".parse().ok());
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            "127.0.0.1:5353".parse().ok()
        );
        assert_eq!(parse_server("::1"), "[::1]:53".parse().ok());
        assert_eq!(parse_server("[::1]:5353"), "[::1]:5353".parse().ok());
        assert_eq!(parse_server("ns.example"), None);
    }

    #[test]
    fn a_signed_message_verifies_with_the_same_key_only() {
        let key = TsigKey::new("k", "hmac-sha256", "c2VjcmV0").unwrap();
        let mut msg = vec![0x12, 0x34, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        encode_name("example.test", &mut msg);
        msg.extend([0, 6, 0, 1]);
        let unsigned = msg.clone();
        let mac = key.sign(&mut msg, 1_700_000_000);
        assert_eq!(u16::from_be_bytes([msg[10], msg[11]]), 1);
        // The message as a server would answer it, signed over the request MAC.
        let mut reply = unsigned.clone();
        reply[2] |= 0x80;
        let mut input = (mac.len() as u16).to_be_bytes().to_vec();
        input.extend(&mac);
        input.extend(&reply);
        input.extend(key.variables(1_700_000_001, 300, 0));
        let reply_mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"secret"), &input);
        let mut rdata = Vec::new();
        encode_name("hmac-sha256", &mut rdata);
        rdata.extend(&1_700_000_001u64.to_be_bytes()[2..]);
        rdata.extend(300u16.to_be_bytes());
        rdata.extend((reply_mac.as_ref().len() as u16).to_be_bytes());
        rdata.extend(reply_mac.as_ref());
        rdata.extend([0x12, 0x34, 0, 0, 0, 0]);
        let mut signed = reply.clone();
        encode_name("k", &mut signed);
        signed.extend(TSIG.to_be_bytes());
        signed.extend(CLASS_ANY.to_be_bytes());
        signed.extend(0u32.to_be_bytes());
        signed.extend((rdata.len() as u16).to_be_bytes());
        signed.extend(rdata);
        signed[11] = 1;
        assert_eq!(
            key.sign_reply(&reply, &mac, 1_700_000_001),
            Some(signed.clone())
        );
        assert_eq!(key.verify(&signed, &mac), Ok(0));
        let other = TsigKey::new("k", "hmac-sha256", "b3RoZXI=").unwrap();
        assert!(other.verify(&signed, &mac).is_err());
    }

    #[test]
    fn an_unsigned_tsig_record_reports_an_error_but_never_success() {
        // Seen while writing the dns fuzz target: a TSIG record with an empty MAC and error 0
        // was taken as a signed, successful answer, whatever the key.
        let key = TsigKey::new("k", "hmac-sha256", "c2VjcmV0").unwrap();
        let unsigned = |error: u16| {
            let mut msg = vec![0x12, 0x34, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            encode_name("k", &mut msg);
            let mut rdata = Vec::new();
            encode_name("hmac-sha256", &mut rdata);
            rdata.extend([0, 0, 0x65, 0x53, 0xf1, 0x00, 1, 0x2c, 0, 0, 0x12, 0x34]);
            rdata.extend(error.to_be_bytes());
            rdata.extend([0, 0]);
            msg.extend(TSIG.to_be_bytes());
            msg.extend(CLASS_ANY.to_be_bytes());
            msg.extend(0u32.to_be_bytes());
            msg.extend((rdata.len() as u16).to_be_bytes());
            msg.extend(rdata);
            msg
        };
        assert_eq!(key.verify(&unsigned(17), b"mac"), Ok(17));
        assert!(key.verify(&unsigned(0), b"mac").is_err());
    }
}
