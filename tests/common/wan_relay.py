#!/usr/bin/env python3
"""A WAN RELAY between any ACME client and a real Pebble: it stands for the internet between a
server and its CA, and for Let's Encrypt's load balancer in front of the CA. It exists because
Pebble on loopback answers in well under a millisecond and enforces no request limits, while a
real CA is 20 to 150 ms away and refuses requests beyond its published per-IP and per-account
figures; what decides a client's time there (round trips on the critical path, polling, how many
certificates are in flight) and whether a big run finishes at all (staying inside the limits)
cannot be seen on loopback.

    python3 tests/common/wan_relay.py --listen HOST:PORT --upstream https://HOST:PORT \\
        --cert CERT.pem --key KEY.pem --upstream-ca CA.pem --rtt-ms 50 \\
        [--limits letsencrypt|none|FILE.json] [--order-limit N/SECONDS] [--stats FILE.json]

Prints `ready` on stdout once it listens. SIGTERM (or SIGINT) writes the stats and ends it;
SIGUSR1 writes the stats; SIGUSR2 writes them and starts afresh (counters and buckets), so that
one relay can serve many measured runs, each as if on a day of its own.

THE DISTANCE. Every byte a client sends reaches the relay's TLS and HTTP layer RTT/2 later, and
every byte that layer sends back reaches the client RTT/2 later, at TCP level: a TCP connection
is accepted at once on loopback, so its first byte is held one more round trip (the SYN and
SYN-ACK a real connection waits for), and the TLS handshake costs its own round trips. Order is
kept per connection and direction; there is no bandwidth limit. (One process: a delaying TCP
forwarder on --listen, and behind it, on a private loopback port, the TLS and HTTP layer.)

THE CA. TLS is terminated with --cert/--key; HTTP/1.1 with keep-alive is parsed (Content-Length
and chunked bodies, `Expect: 100-continue`), and each request is forwarded to Pebble over a
verified TLS connection (--upstream-ca; one kept-alive connection per client connection) with
its Host header unchanged: Pebble builds its URLs from it and checks the JWS `url` against it,
so the client stays behind the relay. Any URL that still names Pebble's own address (bodies,
Location and Link headers) is rewritten to the relay's, as tests/common/proxy.rs does.

THE LIMITS (--limits, default `letsencrypt`): token buckets per endpoint class and client IP, as
Let's Encrypt's load balancer keeps them ("Overall Requests Limit" in
https://letsencrypt.org/docs/rate-limits/, requests per second per IP, with burst):

    class         paths (Pebble's)                     rate/s  burst
    new-nonce     /nonce-plz                           20      10
    new-account   /sign-me-up                          5       15
    new-order     /order-plz                           300     200
    revoke-cert   /revoke-cert                         10      100
    renewal-info  .../renewalInfo/ (ARI)               1000    100
    directory     /dir                                 40      40
    acme          every other path (orders, authz,     250     125
                  challenges, finalize, certificates,
                  accounts, key change, order lists)

Every loopback address counts as one IP, as hosts behind one NAT do. A bucket holds `burst`
tokens and refills `rate` a second; a request finding it empty is answered here, never reaching
Pebble: `503 Service Unavailable` with `Retry-After` (whole seconds until a token is back, at
least 1). Let's Encrypt documents the 503 and Retry-After for these limits but not the body; the
body is the one its load balancer documents for its busy answers (community.letsencrypt.org,
"New Service Busy responses", 2022): an `application/problem+json` problem of type
`urn:ietf:params:acme:error:rateLimited`, detail "Service busy; retry later.", and no
`Replay-Nonce` (the CA never saw the request). `none` limits nothing;
a FILE.json names the classes it limits, e.g. `{"new-nonce": {"rate": 20, "burst": 10}}`
(a class it leaves out is not limited).

THE ORDER LIMIT (--order-limit N/SECONDS, off by default): per account (the JWS `kid` of a
newOrder), Let's Encrypt's "New Orders per Account" (300 per 3 hours) scaled down so that a run
can meet it: a bucket of N orders that refills N every SECONDS (one every SECONDS/N), as
Boulder's limiter does. A newOrder beyond it is answered `429 Too Many Requests` with
`Retry-After` and a `rateLimited` problem worded as Boulder words it: "too many new orders (N)
from this account in the last <period>, retry after <UTC time>: see
https://letsencrypt.org/docs/rate-limits/#new-orders-per-account".

THE STATS (--stats FILE.json): per endpoint (with its limit class) and per limit class: requests,
`503`s and `429`s answered, every status Pebble answered, and the peak requests per second (the
most requests that arrived in any one-second window); and the totals. As JSON:

    {"rtt_ms": 50.0, "limits": "letsencrypt", "order_limit": "2/60" or null,
     "since": "<UTC start of counting>", "seconds": <counted for>,
     "endpoints": {"new-nonce": {"class": "new-nonce", "requests": 12, "503": 2, "429": 0,
                                 "peak_per_second": 12, "statuses": {"200": 10}}, ...},
     "classes": {"new-nonce": {... the same, and "limit": {"rate": 20, "burst": 10} or null}, ...},
     "total": {... the same, "connections": <TCP connections accepted>,
               "open_at_once": <the most of them open at the same time; after a reset,
                                counting from those still open then>}}

Endpoints: directory, new-nonce, new-account, new-order, order, finalize, authz, challenge,
certificate, account, key-change, orders-list, revoke-cert, renewal-info, other. `statuses`
counts Pebble's answers only (not the relay's own 503s and 429s).

Python 3 standard library only (asyncio, ssl).
"""

import argparse
import asyncio
import base64
import collections
import datetime
import json
import math
import os
import signal
import ssl
import sys
import time
import urllib.parse

# Let's Encrypt's published per-IP request limits: class -> (requests per second, burst).
LETSENCRYPT_LIMITS = {
    "new-nonce": (20, 10),
    "new-account": (5, 15),
    "new-order": (300, 200),
    "revoke-cert": (10, 100),
    "renewal-info": (1000, 100),
    "directory": (40, 40),
    "acme": (250, 125),
}
CLASSES = list(LETSENCRYPT_LIMITS)

# Pebble's paths (wfe/wfe.go of Debian's pebble 2.4 and of its newest source; both the same but
# for ARI, which 2.4 lacks) -> (endpoint, limit class). The first prefix that matches wins.
ENDPOINTS = [
    ("/dir", "directory", "directory"),
    ("/nonce-plz", "new-nonce", "new-nonce"),
    ("/sign-me-up", "new-account", "new-account"),
    ("/order-plz", "new-order", "new-order"),
    ("/revoke-cert", "revoke-cert", "revoke-cert"),
    ("/my-order/", "order", "acme"),
    ("/finalize-order/", "finalize", "acme"),
    ("/authZ/", "authz", "acme"),
    ("/chalZ/", "challenge", "acme"),
    ("/certZ/", "certificate", "acme"),
    ("/my-account/", "account", "acme"),
    ("/rollover-account-key", "key-change", "acme"),
    ("/list-orderz/", "orders-list", "acme"),
]
# ARI's path carries its draft's name in Pebble (/draft-ietf-acme-ari-03/renewalInfo/) and is
# /acme/renewal-info/ at Let's Encrypt.
RENEWAL_INFO_MARKS = ("renewalInfo", "renewal-info")

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length", "expect"}
PROBLEM_TYPE = "urn:ietf:params:acme:error:rateLimited"
ORDER_LIMIT_DOC = "https://letsencrypt.org/docs/rate-limits/#new-orders-per-account"
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 429: "Too Many Requests",
           502: "Bad Gateway", 503: "Service Unavailable"}


def classify(path):
    """(endpoint, limit class) of a request path."""
    path = path.split("?", 1)[0]
    if any(mark in path for mark in RENEWAL_INFO_MARKS):
        return "renewal-info", "renewal-info"
    for prefix, endpoint, cls in ENDPOINTS:
        if path.startswith(prefix) if prefix.endswith("/") else path == prefix:
            return endpoint, cls
    return "other", "acme"


def go_duration(seconds):
    """A duration as Go prints it (Boulder's messages do): 3h0m0s, 1m30s, 45s."""
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


class Bucket:
    """A token bucket: `burst` tokens, refilled at `rate` a second."""

    def __init__(self, rate, burst, now):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def take(self, now):
        """None when a token was taken, else the seconds until one is back."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


class Counter:
    """Requests, refusals, Pebble's statuses and the peak rate of one endpoint or class."""

    def __init__(self):
        self.requests = 0
        self.refused_503 = 0
        self.refused_429 = 0
        self.statuses = collections.Counter()
        self.window = collections.deque()
        self.peak = 0

    def arrive(self, now):
        self.requests += 1
        self.window.append(now)
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        self.peak = max(self.peak, len(self.window))

    def as_json(self):
        return {"requests": self.requests, "503": self.refused_503, "429": self.refused_429,
                "peak_per_second": self.peak,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


class Relay:
    def __init__(self, args):
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.delay = args.rtt_ms / 2000.0
        self.rtt = args.rtt_ms / 1000.0
        up = urllib.parse.urlsplit(args.upstream)
        if up.scheme != "https" or not up.hostname or not up.port:
            raise SystemExit(f"--upstream: expected https://HOST:PORT, got {args.upstream!r}")
        self.up_host, self.up_port = up.hostname, up.port
        self.up_authority = f"{up.hostname}:{up.port}".encode()
        self.listen_host, port = args.listen.rsplit(":", 1)
        self.listen_host = self.listen_host.strip("[]")
        self.listen_port = int(port)
        self.authority = args.listen.encode()
        self.server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ssl.load_cert_chain(args.cert, args.key)
        self.client_ssl = ssl.create_default_context(cafile=args.upstream_ca)
        self.limits = load_limits(args.limits)
        self.order_limit = parse_order_limit(args.order_limit) if args.order_limit else None
        # The inner (TLS and HTTP) side's peer port -> the client's address on the outer side.
        self.peers = {}
        self.reset()

    def reset(self):
        self.started = time.time()
        self.buckets = {}
        self.order_buckets = {}
        self.endpoints = collections.defaultdict(Counter)
        self.classes = collections.defaultdict(Counter)
        self.total = Counter()
        self.connections = 0
        # Connections open now (not reset: they are still open) and the most at once.
        self.open = getattr(self, "open", 0)
        self.open_at_once = self.open

    # -- the distance

    async def start(self):
        self.inner = await asyncio.start_server(self.serve_http, "127.0.0.1", 0, ssl=self.server_ssl,
                                                ssl_handshake_timeout=60)
        self.inner_port = self.inner.sockets[0].getsockname()[1]
        self.outer = await asyncio.start_server(self.serve_tcp, self.listen_host, self.listen_port,
                                                backlog=1024)

    async def serve_tcp(self, reader, writer):
        """One client's TCP connection: its bytes pass to the inner side and back, each
        RTT/2 late, the first ones a round trip later still (SYN, SYN-ACK)."""
        accepted = self.loop.time()
        self.connections += 1
        self.open += 1
        self.open_at_once = max(self.open_at_once, self.open)
        peer = writer.get_extra_info("peername")
        try:
            inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", self.inner_port)
        except OSError:
            self.open -= 1
            writer.close()
            return
        local = inner_writer.get_extra_info("sockname")
        self.peers[local[1]] = peer
        try:
            await asyncio.gather(
                self.pump(reader, inner_writer, accepted + self.rtt + self.delay),
                self.pump(inner_reader, writer, 0),
                return_exceptions=True,
            )
        finally:
            self.open -= 1
            self.peers.pop(local[1], None)
            for w in (writer, inner_writer):
                w.close()

    async def pump(self, reader, writer, earliest):
        """Copies reader to writer, each chunk delivered RTT/2 after it came and not before
        `earliest`; an end of stream travels the same way."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    else:
                        writer.close()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                queue.put_nowait((max(self.loop.time() + self.delay, earliest), data))
                if not data:
                    break
            await delivering
        except (ConnectionError, OSError):
            delivering.cancel()
        finally:
            if not delivering.done():
                delivering.cancel()

    # -- HTTP

    async def serve_http(self, reader, writer):
        local = writer.get_extra_info("peername")
        peer = self.peers.get(local[1], local) if local else ("?", 0)
        ip = client_ip(peer[0])
        upstream = [None, None]
        try:
            while True:
                request = await read_request(reader, writer)
                if request is None:
                    break
                method, target, version, headers, body = request
                answer = await self.handle(ip, method, target, headers, body, upstream)
                keep = version == "HTTP/1.1" and not has_token(headers, "connection", "close")
                await send_answer(writer, *answer, keep_alive=keep)
                if not keep:
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            if upstream[1] is not None:
                upstream[1].close()
            try:
                writer.close()
            except (ConnectionError, OSError):
                pass

    async def handle(self, ip, method, target, headers, body, upstream):
        """(status, reason, headers, body, is HEAD) of one request: refused here, or Pebble's."""
        now = self.loop.time()
        endpoint, cls = classify(target)
        counters = (self.endpoints[endpoint], self.classes[cls], self.total)
        for counter in counters:
            counter.arrive(now)
        limit = self.limits.get(cls)
        if limit is not None:
            bucket = self.buckets.get((cls, ip))
            if bucket is None:
                bucket = self.buckets[(cls, ip)] = Bucket(limit[0], limit[1], now)
            wait = bucket.take(now)
            if wait is not None:
                for counter in counters:
                    counter.refused_503 += 1
                return problem(503, max(1, math.ceil(wait)), "Service busy; retry later.", method)
        if self.order_limit and endpoint == "new-order" and method == "POST":
            refused = self.take_order(jws_kid(body), now)
            if refused is not None:
                for counter in counters:
                    counter.refused_429 += 1
                return refused
        status, reason, answer_headers, answer_body = await self.forward(
            method, target, headers, body, upstream)
        for counter in counters:
            counter.statuses[status] += 1
        return status, reason, answer_headers, answer_body, method == "HEAD"

    def take_order(self, kid, now):
        count, period = self.order_limit
        bucket = self.order_buckets.get(kid)
        if bucket is None:
            bucket = self.order_buckets[kid] = Bucket(count / period, count, now)
        wait = bucket.take(now)
        if wait is None:
            return None
        retry = max(1, math.ceil(wait))
        when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=retry))
        detail = (f"too many new orders ({count}) from this account in the last "
                  f"{go_duration(period)}, retry after {when.strftime('%Y-%m-%d %H:%M:%S UTC')}: "
                  f"see {ORDER_LIMIT_DOC}")
        return problem(429, retry, detail, "POST")

    async def forward(self, method, target, headers, body, upstream):
        """Pebble's answer to the request, on this client connection's kept-alive connection
        to Pebble (opened again once when Pebble had closed it)."""
        lines = [f"{method} {target} HTTP/1.1"]
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: keep-alive")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            fresh = upstream[0] is None
            if fresh:
                try:
                    upstream[0], upstream[1] = await asyncio.open_connection(
                        self.up_host, self.up_port, ssl=self.client_ssl,
                        server_hostname=self.up_host)
                except (OSError, ssl.SSLError) as error:
                    return bad_gateway(f"connect to Pebble: {error}")
            try:
                upstream[1].write(data)
                await upstream[1].drain()
                answer = await read_answer(upstream[0], method)
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError,
                    ValueError) as error:
                answer = None
                failure = str(error) or type(error).__name__
            else:
                failure = "Pebble closed the connection"
            if answer is None:
                upstream[1].close()
                upstream[0] = upstream[1] = None
                if fresh or attempt == 2:
                    return bad_gateway(failure)
                continue
            status, reason, answer_headers, answer_body, close = answer
            if close:
                upstream[1].close()
                upstream[0] = upstream[1] = None
            answer_headers = [(k, self.rewrite(v.encode("latin-1")).decode("latin-1"))
                              for k, v in answer_headers if k.lower() not in HOP_BY_HOP]
            return status, reason, answer_headers, self.rewrite(answer_body)
        return bad_gateway("no answer")

    def rewrite(self, data):
        return data.replace(self.up_authority, self.authority)

    # -- stats

    def stats(self):
        classes = {}
        for cls in CLASSES:
            entry = self.classes[cls].as_json() if cls in self.classes else Counter().as_json()
            limit = self.limits.get(cls)
            entry["limit"] = {"rate": limit[0], "burst": limit[1]} if limit else None
            classes[cls] = entry
        endpoints = {}
        for endpoint, counter in sorted(self.endpoints.items()):
            entry = counter.as_json()
            entry["class"] = classify_endpoint(endpoint)
            endpoints[endpoint] = entry
        total = self.total.as_json()
        total["connections"] = self.connections
        total["open_at_once"] = self.open_at_once
        return {
            "rtt_ms": self.args.rtt_ms,
            "limits": self.args.limits,
            "order_limit": self.args.order_limit,
            "since": datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "seconds": round(time.time() - self.started, 3),
            "endpoints": endpoints,
            "classes": classes,
            "total": total,
        }

    def write_stats(self):
        if not self.args.stats:
            return
        temporary = self.args.stats + ".tmp"
        with open(temporary, "w") as f:
            json.dump(self.stats(), f, indent=1)
            f.write("\n")
        os.replace(temporary, self.args.stats)


def classify_endpoint(endpoint):
    for _, name, cls in ENDPOINTS:
        if name == endpoint:
            return cls
    return "renewal-info" if endpoint == "renewal-info" else "acme"


def client_ip(address):
    """The IP a limit is counted for: every loopback address is one, as behind one NAT."""
    if address.startswith("127.") or address in ("::1", "localhost") or address.startswith("::ffff:127."):
        return "loopback"
    return address


def has_token(headers, name, token):
    return any(k.lower() == name and token in [t.strip().lower() for t in v.split(",")]
               for k, v in headers)


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def jws_kid(body):
    """The `kid` of a flattened JWS body (None when there is none or it is not one)."""
    try:
        protected = json.loads(body)["protected"]
        padded = protected + "=" * (-len(protected) % 4)
        return json.loads(base64.urlsafe_b64decode(padded)).get("kid")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def problem(status, retry_after, detail, method):
    body = json.dumps({"type": PROBLEM_TYPE, "detail": detail, "status": status}).encode()
    headers = [("Content-Type", "application/problem+json"), ("Retry-After", str(retry_after)),
               ("Cache-Control", "no-store")]
    return status, REASONS[status], headers, body, method == "HEAD"


def bad_gateway(text):
    return 502, "Bad Gateway", [("Content-Type", "text/plain")], f"relay: {text}".encode(), False


async def read_head(reader):
    """The start line and headers of a message; None at a clean end of the stream."""
    line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ValueError("truncated start line")
    start = line.decode("latin-1").rstrip("\r\n")
    headers = []
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise ValueError("truncated headers")
        line = line.decode("latin-1").rstrip("\r\n")
        if not line:
            return start, headers
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))


async def read_body(reader, headers, until_close):
    if has_token(headers, "transfer-encoding", "chunked"):
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers, up to the blank line.
                while (await reader.readline()).strip():
                    pass
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    if until_close:
        return await reader.read()
    return b""


async def read_request(reader, writer):
    head = await read_head(reader)
    if head is None:
        return None
    start, headers = head
    method, target, version = start.split(" ", 2)
    if has_token(headers, "expect", "100-continue"):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    body = await read_body(reader, headers, until_close=False)
    return method, target, version, headers, body


async def read_answer(reader, method):
    """(status, reason, headers, body, connection closes) of Pebble's answer; None when the
    connection ended before one."""
    head = await read_head(reader)
    if head is None:
        return None
    start, headers = head
    parts = start.split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    close = has_token(headers, "connection", "close")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        delimited = has_token(headers, "transfer-encoding", "chunked") or \
            header(headers, "content-length") is not None
        body = await read_body(reader, headers, until_close=True)
        close = close or not delimited
    return status, reason, headers, body, close


async def send_answer(writer, status, reason, headers, body, is_head, keep_alive):
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if is_head else body))
    await writer.drain()


def load_limits(text):
    if text == "letsencrypt":
        return dict(LETSENCRYPT_LIMITS)
    if text == "none":
        return {}
    try:
        with open(text) as f:
            given = json.load(f)
        limits = {}
        for cls, figures in given.items():
            if cls not in CLASSES:
                raise ValueError(f"unknown class {cls!r}; known: {', '.join(CLASSES)}")
            rate, burst = float(figures["rate"]), float(figures["burst"])
            if rate <= 0 or burst < 1:
                raise ValueError(f"{cls}: rate must be above 0 and burst at least 1")
            limits[cls] = (rate, burst)
        return limits
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise SystemExit(f"--limits {text}: {error}")


def parse_order_limit(text):
    try:
        count, period = text.split("/", 1)
        count, period = int(count), float(period)
        if count < 1 or period <= 0:
            raise ValueError
        return count, period
    except ValueError:
        raise SystemExit(f"--order-limit: expected N/SECONDS, got {text!r}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--upstream", required=True, metavar="https://HOST:PORT")
    parser.add_argument("--cert", required=True, help="the relay's TLS certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--upstream-ca", required=True, help="the CA that signed Pebble's TLS certificate")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round trip added, ms")
    parser.add_argument("--limits", default="letsencrypt", help="letsencrypt (default), none, or FILE.json")
    parser.add_argument("--order-limit", metavar="N/SECONDS", help="newOrder requests per account")
    parser.add_argument("--stats", metavar="FILE.json", help="where the stats are written")
    args = parser.parse_args()
    if args.rtt_ms < 0:
        parser.error("--rtt-ms must not be negative")
    return args


async def main():
    args = parse_args()
    relay = Relay(args)
    await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, relay.write_stats)

    def write_and_reset():
        relay.write_stats()
        relay.reset()

    loop.add_signal_handler(signal.SIGUSR2, write_and_reset)
    print("ready", flush=True)
    await stop.wait()
    relay.write_stats()
    relay.outer.close()
    relay.inner.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
