#!/usr/bin/env python3
# Benchmark driver: starts a local Pebble ACME server (with pebble-challtestsrv as its DNS and a
# python web server for the http-01 webroot), runs desiccant, dehydrated, lego, certbot and uacme
# through the same scenarios against it, and prints BENCHMARKS.md (or writes it with --write).
# Standard library only. Started by tests/bench/run.sh as root: it re-executes itself in a
# private mount namespace, where Pebble's throw-away CA is added to the system trust store.

import argparse
import concurrent.futures
import ctypes
import datetime
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Where every run saves its results, for --render.
RESULTS = os.path.join(ROOT, "target", "bench-results.json")
WAN_RESULTS = os.path.join(ROOT, "target", "bench-wan-results.json")
RELAY = os.path.join(ROOT, "tests", "common", "wan_relay.py")
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NAMESPACE_MARK = "DESICCANT_BENCH_NAMESPACE"
EMAIL = "bench@example.org"
# The noop scenarios copy one real issuance of this name into N synthetic certificates.
TEMPLATE = "template.example"
# A client/scenario whose first run takes longer than this gets SLOW_RUNS runs at most.
SLOW_RUN_MS = 10_000
SLOW_RUNS = 3
# Pebble's log has one such line for every ACME request it handles.
REQUEST_MARK = "-> calling handler()"
# Pebble's newNonce path, in its request log lines.
NONCE_MARK = "/nonce-plz "
NEW_ORDER_MARK = "/order-plz -> calling handler()"
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}

CLIENT_NAMES = ["desiccant", "dehydrated", "lego", "certbot", "uacme"]
SCENARIOS = ["one-first", "one", "san10", "batch20", "dns1", "noop100", "noop1000"]
SCENARIO_TEXT = {
    "one-first": "a fresh state folder each run (no account): register and issue one name",
    "one": "account and certificate exist: forced re-issue of one name",
    "san10": "forced re-issue of one certificate with 10 names (apex + 9 sub-names)",
    "batch20": "forced re-issue of 20 certificates of one name each, in one run where the client can",
    "dns1": "forced re-issue of `example.org *.example.org` by dns-01 through the client's hook",
    "noop100": "100 valid certificates, nothing due: the daily run",
    "noop1000": "1000 valid certificates, nothing due: the daily run",
}
CLIENT_TEXT = {
    "desiccant": "`desiccant --config CFG --cron --force` (`--cron --accept-terms` for one-first, "
    "`--cron` for noop); one `domains.txt` line per certificate",
    "dehydrated": "`dehydrated --config CFG --cron --force`, the same `config` keys and "
    "`domains.txt` as desiccant; dns1 with `CHALLENGETYPE=dns-01` and `HOOK=` a bash hook",
    "lego": "`lego run` (one-first), forced re-issue `lego renew --days 9999 --no-random-sleep`, "
    "noop `lego renew --days 30 --no-random-sleep`; one certificate per process, so batch20 and "
    "noop are one shell loop; dns1 with `--dns exec --dns.disable-cp --dns.resolvers` "
    "(challtestsrv), `EXEC_SEQUENCE_INTERVAL=0` and `EXEC_POLLING_INTERVAL=1`",
    "certbot": "`certbot certonly --webroot --force-renewal`; batch20 is one "
    "`certbot renew --force-renewal`, noop one `certbot renew`; dns1 with `--manual` and "
    "auth/cleanup hooks",
    "uacme": "`uacme -t EC new` + `uacme issue` (one-first), forced `uacme -f issue`; one "
    "certificate per process, so batch20 and noop are one shell loop (noop: exit status 1, "
    "\"still current\"); http-01 through `/usr/share/uacme/uacme.sh`, dns1 through a hook",
}


class BenchError(Exception):
    """A step failed: the benchmark stops and shows `output`."""

    def __init__(self, message, output=""):
        super().__init__(message)
        self.output = output


# ---------------------------------------------------------------------------------------------
# Small helpers


def write_file(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def read_file(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listens on port {port}")


def certificates_in(pem):
    """The PEM certificate blocks of `pem`, each with its END line and newline."""
    blocks = []
    start = pem.find("-----BEGIN CERTIFICATE-----")
    while start >= 0:
        end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----\n")
        blocks.append(pem[start:end])
        start = pem.find("-----BEGIN CERTIFICATE-----", end)
    return blocks


def run_process(argv, env=None, cwd=None):
    """Runs argv to the end and returns (exit status, stdout and stderr). It gets a session of
    its own, so that an interrupted benchmark can stop it with everything it started (SIGTERM
    first: a measuring helper then kills its client, which has a session of its own)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate()
    except BaseException:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    return proc.returncode, output.decode(errors="replace")


def command_output(argv):
    """stdout and stderr of a short command (versions)."""
    _, output = run_process(argv)
    return output.strip()


# ---------------------------------------------------------------------------------------------
# Commands


class Command:
    """One thing to run: argv, the exit status that means success, extra environment, folder,
    and an optional step run (unmeasured) before each measured run."""

    def __init__(self, argv, ok=0, env=None, cwd=None, before=None):
        self.argv = argv
        self.ok = ok
        self.env = env or {}
        self.cwd = cwd
        self.before = before

    def text(self):
        if self.argv[:2] == ["bash", "-c"]:
            return self.argv[2]
        return shlex.join(self.argv)


# Shell scripts run several client processes as one measured step. Every process must exit
# with the status it is expected to, else the script stops with exit status 1.
EXPECT_FUNCTION = """expect() {
    want=$1; shift
    "$@"; got=$?
    if [ "$got" -ne "$want" ]; then echo "exit status $got, expected $want: $*" >&2; exit 1; fi
}
"""


def shell_steps(steps, env=None, cwd=None):
    """One bash script running (argv, expected status) steps one after the other."""
    lines = [EXPECT_FUNCTION]
    for argv, ok in steps:
        lines.append(f"expect {ok} {shlex.join(argv)}\n")
    return Command(["bash", "-c", "".join(lines)], env=env, cwd=cwd)


def shell_loop(names, argv, ok, env=None, cwd=None):
    """One bash loop running argv once per name ("{name}" in argv stands for the name), each
    expected to exit with status `ok`."""
    words = ['"$name"' if arg == "{name}" else shlex.quote(arg) for arg in argv]
    script = (
        EXPECT_FUNCTION
        + f"for name in {' '.join(shlex.quote(n) for n in names)}; do\n"
        + f"    expect {ok} {' '.join(words)}\n"
        + "done\n"
    )
    return Command(["bash", "-c", script], env=env, cwd=cwd)


# ---------------------------------------------------------------------------------------------
# The lab: Pebble, its DNS server, the webroot server and the trust store


class Lab:
    """Pebble and its helpers. With `rtt_ms`, every client reaches Pebble through
    tests/common/wan_relay.py (that round trip, Let's Encrypt's request limits), and `pebble_env`
    may turn Pebble's validation delay on."""

    def __init__(self, pebble_env=PEBBLE_ENV, rtt_ms=None):
        self.pebble_env = pebble_env
        self.rtt_ms = rtt_ms
        self.relay = None
        self.relay_stats = None
        self.root = tempfile.mkdtemp(prefix="desiccant-bench.")
        self.www = os.path.join(self.root, "www")
        self.challenges = os.path.join(self.www, ".well-known", "acme-challenge")
        self.bundle = os.path.join(self.root, "ca-bundle.crt")
        self.pebble_log = os.path.join(self.root, "pebble.log")
        self.processes = []
        self.mounted = False
        self.hooks = {}
        self.fake_key = os.path.join(self.root, "fake", "key.pem")
        self.fake_ca = os.path.join(self.root, "fake", "ca.pem")
        self.fake_certs = {}

    # -- start and stop

    def start(self):
        os.makedirs(self.challenges)
        self.make_tls_certificate()
        self.acme_port = free_port()
        self.management_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port()
        self.dns_port = free_port()
        self.dns_management_port = free_port()
        self.url = self.pebble_url = f"https://127.0.0.1:{self.acme_port}/dir"
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": os.path.join(self.root, "tls-cert.pem"),
                "privateKey": os.path.join(self.root, "tls-key.pem"),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        write_file(os.path.join(self.root, "pebble.json"), json.dumps(config, indent=1))

        # Every name resolves to 127.0.0.1, where nginx serves the webroot on Pebble's httpPort.
        self.spawn("dns.log", [
            "pebble-challtestsrv",
            "-dns01", f"127.0.0.1:{self.dns_port}",
            "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", f"127.0.0.1:{self.dns_management_port}",
            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
        ])
        # nginx, as on the servers these clients run on. (python's http.server would
        # listen with a backlog of 5: Pebble's concurrent validations of 10 names would wait
        # a second for a SYN to be sent again, which no real web server makes them do.)
        nginx_conf = os.path.join(self.root, "nginx.conf")
        write_file(nginx_conf, f"""daemon off;
user root;
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.root}/nginx-body;
    proxy_temp_path {self.root}/nginx-proxy;
    fastcgi_temp_path {self.root}/nginx-fastcgi;
    uwsgi_temp_path {self.root}/nginx-uwsgi;
    scgi_temp_path {self.root}/nginx-scgi;
    server {{
        listen 127.0.0.1:{self.http_port};
        root {self.www};
    }}
}}
""")
        self.spawn("www.log", ["nginx", "-c", nginx_conf, "-p", self.root])
        self.spawn("pebble.log", [
            "pebble", "-config", os.path.join(self.root, "pebble.json"),
            "-dnsserver", f"127.0.0.1:{self.dns_port}",
        ], env=self.pebble_env)
        wait_port(self.dns_management_port)
        wait_port(self.http_port)
        wait_port(self.acme_port)
        if self.rtt_ms is not None:
            self.start_relay()
        self.trust_ca()
        self.write_hooks()

    def start_relay(self):
        """The WAN relay in front of Pebble, with its certificate (it is for 127.0.0.1): from
        now on every client's CA URL is the relay's."""
        port = free_port()
        self.relay_stats = os.path.join(self.root, "relay-stats.json")
        self.relay = self.spawn("relay.log", [
            sys.executable, RELAY, "--listen", f"127.0.0.1:{port}",
            "--upstream", f"https://127.0.0.1:{self.acme_port}",
            "--cert", os.path.join(self.root, "tls-cert.pem"),
            "--key", os.path.join(self.root, "tls-key.pem"),
            "--upstream-ca", os.path.join(self.root, "ca.pem"),
            "--rtt-ms", str(self.rtt_ms), "--limits", "letsencrypt", "--stats", self.relay_stats,
        ])
        log = os.path.join(self.root, "relay.log")
        for _ in range(200):
            if "ready" in read_file(log).split():
                break
            if self.relay.poll() is not None:
                raise BenchError("the WAN relay did not start", read_file(log))
            time.sleep(0.05)
        else:
            raise BenchError("the WAN relay did not start", read_file(log))
        self.url = f"https://127.0.0.1:{port}/dir"

    def relay_signal(self, signum):
        """Has the relay write its stats (SIGUSR1; SIGUSR2: and start afresh) and returns them."""
        try:
            os.unlink(self.relay_stats)
        except FileNotFoundError:
            pass
        self.relay.send_signal(signum)
        for _ in range(400):
            if os.path.exists(self.relay_stats):
                with open(self.relay_stats) as f:
                    return json.load(f)
            time.sleep(0.01)
        raise BenchError("the WAN relay wrote no stats", read_file(os.path.join(self.root, "relay.log")))

    def stop(self):
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes = []
        if self.mounted:
            subprocess.run(["umount", SYSTEM_BUNDLE], check=False)
            self.mounted = False
        shutil.rmtree(self.root, ignore_errors=True)

    def spawn(self, log_name, argv, env=None):
        with open(os.path.join(self.root, log_name), "wb") as log:
            proc = subprocess.Popen(
                argv,
                env=dict(os.environ, **(env or {})),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def openssl(self, *args, env=None):
        status, output = run_process(["openssl", *args], env=env, cwd=self.root)
        if status != 0:
            raise BenchError(f"openssl {' '.join(args)} failed", output)

    def make_tls_certificate(self):
        """A throw-away CA and, signed by it, Pebble's TLS certificate for 127.0.0.1/localhost
        (as tests/demo.sh does)."""
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-days", "2", "-subj", "/CN=desiccant bench CA",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-keyout", "ca.key", "-out", "ca.pem")
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-subj", "/CN=localhost", "-keyout", "tls-key.pem", "-out", "tls.csr")
        write_file(os.path.join(self.root, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "tls-cert.pem")

    def trust_ca(self):
        """Puts the system bundle plus the throw-away CA over the system bundle, in this mount
        namespace only, so that every client trusts Pebble the way it trusts any CA."""
        if os.readlink("/proc/self/ns/mnt") == os.environ.get(NAMESPACE_MARK):
            raise BenchError("not in a private mount namespace: refusing to mount over " + SYSTEM_BUNDLE)
        write_file(self.bundle, read_file(SYSTEM_BUNDLE).rstrip("\n") + "\n"
                   + read_file(os.path.join(self.root, "ca.pem")))
        status, output = run_process(["mount", "--bind", self.bundle, SYSTEM_BUNDLE])
        if status != 0:
            raise BenchError("mount --bind of the CA bundle failed", output)
        self.mounted = True
        for key in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "LEGO_CA_CERTIFICATES", "CURL_CA_BUNDLE"):
            os.environ[key] = self.bundle
        # The hooks talk to challtestsrv over plain HTTP on 127.0.0.1: never through a proxy.
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        # A check that the system store alone now trusts Pebble.
        status, output = run_process(
            ["curl", "-sS", "-o", "/dev/null", self.url],
            env={key: value for key, value in os.environ.items()
                 if key not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")},
        )
        if status != 0:
            raise BenchError("curl does not trust Pebble through " + SYSTEM_BUNDLE, output)

    def write_hooks(self):
        """The dns-01 hooks of every client, all setting TXT records through challtestsrv."""
        api = f"http://127.0.0.1:{self.dns_management_port}"
        txt = (
            f'set_txt() {{ curl -sSf -X POST -d "{{\\"host\\":\\"$1\\",\\"value\\":\\"$2\\"}}" {api}/set-txt; }}\n'
            f'clear_txt() {{ curl -sSf -X POST -d "{{\\"host\\":\\"$1\\"}}" {api}/clear-txt; }}\n'
        )
        hooks = {
            # dehydrated's hook protocol (HOOK_CHAIN=no): deploy_challenge DOMAIN TOKEN_FILENAME
            # TOKEN_VALUE, once per name; a wildcard comes as its base name.
            "dehydrated": txt + """case "$1" in
    deploy_challenge) set_txt "_acme-challenge.$2." "$4" ;;
    clean_challenge) clear_txt "_acme-challenge.$2." ;;
    *) exit 0 ;;
esac
""",
            # lego's exec provider: present|cleanup FQDN VALUE.
            "lego": txt + """case "$1" in
    present) set_txt "$2" "$3" ;;
    cleanup) clear_txt "$2" ;;
    *) exit 1 ;;
esac
""",
            "certbot-auth": txt + 'set_txt "_acme-challenge.$CERTBOT_DOMAIN." "$CERTBOT_VALIDATION"\n',
            "certbot-cleanup": txt + 'clear_txt "_acme-challenge.$CERTBOT_DOMAIN."\n',
            # uacme: METHOD TYPE IDENT TOKEN AUTH; declining (exit 1) makes it try the next type.
            "uacme": txt + """case "$1:$2" in
    begin:dns-01) set_txt "_acme-challenge.$3." "$5" ;;
    done:dns-01|failed:dns-01) clear_txt "_acme-challenge.$3." ;;
    *) exit 1 ;;
esac
""",
        }
        for name, body in hooks.items():
            path = os.path.join(self.root, "hooks", name + ".sh")
            write_file(path, "#!/usr/bin/env bash\n# dns-01 hook of the benchmark: TXT records in "
                       "pebble-challtestsrv.\nset -eu\n" + body, 0o755)
            self.hooks[name] = path

    # -- what Pebble saw

    def pebble_requests(self):
        """Every request Pebble handled so far, one log line each."""
        with open(self.pebble_log, errors="replace") as f:
            return [line for line in f if REQUEST_MARK in line]

    def pebble_setting(self, prefix):
        with open(self.pebble_log, errors="replace") as f:
            for line in f:
                if prefix in line:
                    return line.split(prefix, 1)[1].strip()
        return "?"

    # -- running clients

    def run_setup(self, command, label):
        """Runs a set-up step (not measured); it must exit as expected."""
        status, output = run_process(command.argv, env=dict(os.environ, **command.env), cwd=command.cwd)
        if status != command.ok:
            raise BenchError(f"{label}: exit status {status}, expected {command.ok}\n$ {command.text()}", output)

    def measure(self, command, label):
        """One measured run, through a fresh helper process (see measure_main). Returns wall and
        CPU ms, peak RSS MiB, the requests and new orders Pebble saw, and the client's output.
        An unexpected exit status stops the benchmark."""
        log = os.path.join(self.root, "run.log")
        if command.before:
            command.before()
        before = len(self.pebble_requests())
        if self.relay:
            self.relay_signal(signal.SIGUSR2)
        helper = [sys.executable, os.path.abspath(__file__), "--measure", log, "--"] + command.argv
        status, output = run_process(helper, env=dict(os.environ, **command.env), cwd=command.cwd)
        if status != 0:
            raise BenchError(f"{label}: the measuring helper failed", output)
        result = json.loads(output.strip().splitlines()[-1])
        requests = self.pebble_requests()[before:]
        relayed = self.relay_signal(signal.SIGUSR1) if self.relay else None
        if result["status"] != command.ok and relayed:
            # Across the WAN a client may fail (a 503 it does not retry): that is a result.
            tail = read_file(log).strip().splitlines()[-3:]
            return {"failed": f"exit status {result['status']}: " + " / ".join(tail)[-300:],
                    "wall_ms": result["wall_ms"], "relay": relayed, "log": read_file(log)}
        if result["status"] != command.ok:
            raise BenchError(
                f"{label}: exit status {result['status']}, expected {command.ok}\n$ {command.text()}",
                read_file(log),
            )
        return {
            "wall_ms": result["wall_ms"],
            "cpu_ms": result["cpu_ms"],
            "rss_mib": result["rss_kib"] / 1024,
            # Through the relay: every request sent, also those it refused.
            "requests": relayed["total"]["requests"] if relayed else len(requests),
            "nonces": (relayed["endpoints"].get("new-nonce", {}).get("requests", 0) if relayed
                       else sum(1 for line in requests if NONCE_MARK in line)),
            "orders": sum(1 for line in requests if NEW_ORDER_MARK in line),
            "log": read_file(log),
            "relay": relayed,
        }

    # -- synthetic certificates for the noop scenarios

    def fake_certificates(self, names):
        """name -> PEM of a 90-day certificate for that name, all with one P-256 key
        (self.fake_key) and issued by one fake CA (self.fake_ca), so that a certificate file
        with its chain is a proper chain (uacme's GnuTLS checks the order). Made once and
        shared by every client."""
        folder = os.path.join(self.root, "fake")
        config = os.path.join(folder, "openssl.cnf")
        if not os.path.exists(self.fake_key):
            write_file(config, """[req]
distinguished_name = dn
prompt = no
[dn]
CN = $ENV::BENCH_NAME
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$ENV::BENCH_NAME
""")
            self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-out", self.fake_key)
            self.openssl("req", "-x509", "-new", "-config", config, "-extensions", "ca",
                         "-key", self.fake_key, "-days", "100", "-out", self.fake_ca,
                         env=dict(os.environ, BENCH_NAME="desiccant bench fake CA"))
        def make(name):
            path = os.path.join(folder, name + ".pem")
            self.openssl("req", "-x509", "-new", "-config", config, "-extensions", "leaf",
                         "-key", self.fake_key, "-CA", self.fake_ca, "-CAkey", self.fake_key,
                         "-days", "90", "-out", path, env=dict(os.environ, BENCH_NAME=name))
            return name, read_file(path)

        # A few openssl processes at once: 10,000 of them one by one take minutes.
        missing = [name for name in names if name not in self.fake_certs]
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            self.fake_certs.update(pool.map(make, missing))
        return {name: self.fake_certs[name] for name in names}


# ---------------------------------------------------------------------------------------------
# The clients. Each knows how to set up its state folder (not measured) and which command is
# the measured step of each scenario.


class Client:
    name = ""

    def __init__(self, lab):
        self.lab = lab

    def supports(self, challenge):
        return True

    def set_up(self, d, certs, challenge):
        """An account and every certificate of `certs` in the state folder d (not measured)."""
        raise NotImplementedError

    def first_run(self, d, certs):
        """The measured step of one-first: register and issue, in the empty folder d."""
        raise NotImplementedError

    def reissue(self, d, certs, challenge):
        """The measured step of a forced re-issue of every certificate of `certs`."""
        raise NotImplementedError

    def daily(self, d, certs):
        """The measured step of the noop scenarios: the daily run, with nothing due."""
        raise NotImplementedError

    def issued_files(self, d, name):
        """(certificate file, private key file) of the certificate called `name`."""
        raise NotImplementedError

    def use_certificates(self, d, certs):
        """Tells the client's configuration which certificates it keeps (after the synthetic
        noop state was made); most clients find them on disk."""


def domains_line(names):
    """A domains.txt line; a line with a wildcard gets an alias, as desiccant needs."""
    line = " ".join(names)
    if any(name.startswith("*.") for name in names):
        line += " > " + names[0].removeprefix("*.")
    return line


class DehydratedStyle(Client):
    """desiccant and dehydrated: a config file, domains.txt, certs/<name>/."""

    program = ""

    def config_lines(self, d):
        raise NotImplementedError

    def dns_config_lines(self):
        """Config lines for dns-01, or None when the client cannot do it."""
        return ["CHALLENGETYPE=dns-01", f"HOOK={self.lab.hooks['dehydrated']}", "HOOK_CHAIN=no"]

    def supports(self, challenge):
        return challenge == "http-01" or self.dns_config_lines() is not None

    def write_state(self, d, certs, challenge):
        lines = self.config_lines(d)
        if challenge == "dns-01":
            lines += self.dns_config_lines()
        write_file(os.path.join(d, "config"), "\n".join(lines) + "\n")
        self.use_certificates(d, certs)

    def use_certificates(self, d, certs):
        write_file(os.path.join(d, "domains.txt"), "".join(domains_line(c) + "\n" for c in certs))

    def command(self, d, *flags):
        return Command([self.program, "--config", os.path.join(d, "config"), *flags], cwd=d)

    def set_up(self, d, certs, challenge):
        self.write_state(d, certs, challenge)
        self.lab.run_setup(self.command(d, "--register", "--accept-terms"), f"{self.name} --register")
        self.lab.run_setup(self.command(d, "--cron"), f"{self.name} --cron")

    def first_run(self, d, certs):
        self.write_state(d, certs, "http-01")
        return self.command(d, "--cron", "--accept-terms")

    def reissue(self, d, certs, challenge):
        return self.command(d, "--cron", "--force")

    def daily(self, d, certs):
        return self.command(d, "--cron")

    def issued_files(self, d, name):
        folder = os.path.join(d, "certs", name)
        return os.path.join(folder, "cert.pem"), os.path.join(folder, "privkey.pem")


class Desiccant(DehydratedStyle):
    name = "desiccant"

    def __init__(self, lab, binary):
        super().__init__(lab)
        self.program = binary
        # scenario -> the --verbose output of one more run of it (`one` and `dns1`, when run).
        self.traces = {}
        # The dns1 hook's own runs, measured without any client (see measure_hook_floor).
        self.hook_floor = None

    def measure_hook_floor(self, lab, runs):
        """The 10 hook runs desiccant makes in dns1 (dehydrated's protocol, HOOK_CHAIN=no), one
        after the other in one bash script, with nothing else: the part of dns1 that is the
        hook's own processes (bash and curl). Median of `runs`."""
        hook = lab.hooks["dehydrated"]
        txt = "gfj9Xq-f9jgBcT1O5uy7x6yNa9dmDX5g5YbmTk9bM3Q"
        live = [os.path.join(lab.root, f) for f in ("privkey.pem", "cert.pem", "fullchain.pem", "chain.pem")]
        new_set = [os.path.join(lab.root, f"{kind}-1795442400.{ext}") for kind, ext in
                   (("privkey", "pem"), ("cert", "pem"), ("fullchain", "pem"), ("chain", "pem"), ("cert", "csr"))]
        calls = [
            [hook, "this_hookscript_is_broken__dehydrated_is_working_fine__please_ignore_unknown_hooks_in_your_script"],
            [hook, "startup_hook"],
            [hook, "generate_csr", "example.org", lab.root, "example.org *.example.org"],
            [hook, "deploy_challenge", "example.org", "token1", txt],
            [hook, "deploy_challenge", "example.org", "token2", txt],
            [hook, "clean_challenge", "example.org", "token1", txt],
            [hook, "clean_challenge", "example.org", "token2", txt],
            [hook, "sync_cert", *new_set],
            [hook, "deploy_cert", "example.org", *live, "1795442400"],
            [hook, "exit_hook", ""],
        ]
        command = shell_steps([(argv, 0) for argv in calls])
        results = [lab.measure(command, f"dns1 hook alone: run {i + 1}") for i in range(runs)]
        return dict(summarize(results), processes=len(calls))

    def itself(self, lab):
        """Start-up of --version and --help (median of 20 each), and the binary's size."""
        result = {"size_mib": os.path.getsize(self.program) / (1 << 20)}
        for flag in ("--version", "--help"):
            runs = [lab.measure(Command([self.program, flag]), f"desiccant {flag}") for _ in range(20)]
            result[flag] = summarize(runs)
        return result

    def config_lines(self, d):
        return [
            f'CA="{self.lab.url}"',
            f'CA_BUNDLE="{self.lab.bundle}"',
            f'WELLKNOWN="{self.lab.challenges}"',
            "KEY_ALGO=prime256v1",
            f"CONTACT_EMAIL={EMAIL}",
            # The relay enforces no per-account order limit here (Let's Encrypt's 300 per 3 h
            # would stop batch1000, and the repeated runs of one account, for every client), so
            # desiccant is not told to keep under one either.
            "ORDER_LIMIT=none",
        ]

    def dns_config_lines(self):
        # The same hook as dehydrated's; before the CA is told to look, desiccant asks the
        # name server (challtestsrv here, as lego is told with --dns.resolvers) until it has
        # the records.
        return super().dns_config_lines() + [f"DNS_CHECK_SERVERS=127.0.0.1:{self.lab.dns_port}"]


class Dehydrated(DehydratedStyle):
    name = "dehydrated"
    program = "dehydrated"

    def config_lines(self, d):
        return [
            f'CA="{self.lab.url}"',
            f'WELLKNOWN="{self.lab.challenges}"',
            "KEY_ALGO=prime256v1",
            f'BASEDIR="{d}"',
            f"CONTACT_EMAIL={EMAIL}",
        ]


class Lego(Client):
    name = "lego"

    def command(self, d, names, challenge, *action):
        argv = ["lego", "--server", self.lab.url, "--email", EMAIL, "--accept-tos",
                "--path", d, "--key-type", "ec256"]
        env = {}
        if challenge == "http-01":
            argv += ["--http", "--http.webroot", self.lab.www]
        else:
            # Ask challtestsrv, not public DNS, whether the record is there; do not wait the exec
            # provider's default 60 s between the two challenges of example.org, nor 2 s (its
            # polling interval) before the first look.
            argv += ["--dns", "exec", "--dns.disable-cp",
                     "--dns.resolvers", f"127.0.0.1:{self.lab.dns_port}"]
            env = {"EXEC_PATH": self.lab.hooks["lego"], "EXEC_SEQUENCE_INTERVAL": "0",
                   "EXEC_POLLING_INTERVAL": "1"}
        for name in names:
            argv += ["--domains", name]
        return Command(argv + list(action), env=env, cwd=d)

    def set_up(self, d, certs, challenge):
        for names in certs:
            self.lab.run_setup(self.command(d, names, challenge, "run"), "lego run")

    def first_run(self, d, certs):
        return self.command(d, certs[0], "http-01", "run")

    def reissue(self, d, certs, challenge):
        # lego has no --force: renewing when fewer than 9999 days are left always renews.
        renew = ["renew", "--days", "9999", "--no-random-sleep"]
        if len(certs) == 1:
            return self.command(d, certs[0], challenge, *renew)
        one = self.command(d, ["{name}"], challenge, *renew)
        return shell_loop([c[0] for c in certs], one.argv, 0, env=one.env, cwd=d)

    def daily(self, d, certs):
        one = self.command(d, ["{name}"], "http-01", "renew", "--days", "30", "--no-random-sleep")
        return shell_loop([c[0] for c in certs], one.argv, 0, env=one.env, cwd=d)

    def issued_files(self, d, name):
        base = os.path.join(d, "certificates", name)
        return base + ".crt", base + ".key"


class Certbot(Client):
    name = "certbot"

    def command(self, d, subcommand, *args):
        argv = ["certbot", subcommand,
                "--config-dir", os.path.join(d, "conf"),
                "--work-dir", os.path.join(d, "work"),
                "--logs-dir", os.path.join(d, "logs"),
                "--server", self.lab.url, "--non-interactive", "--agree-tos", "-m", EMAIL,
                "--key-type", "ecdsa", "--elliptic-curve", "secp256r1", *args]
        return Command(argv, cwd=d)

    def certonly(self, d, names, challenge, *flags):
        if challenge == "http-01":
            auth = ["--webroot", "-w", self.lab.www]
        else:
            auth = ["--manual", "--preferred-challenges", "dns",
                    "--manual-auth-hook", self.lab.hooks["certbot-auth"],
                    "--manual-cleanup-hook", self.lab.hooks["certbot-cleanup"]]
        domains = []
        for name in names:
            domains += ["-d", name]
        return self.command(d, "certonly", *auth, *flags, *domains)

    def set_up(self, d, certs, challenge):
        for names in certs:
            self.lab.run_setup(self.certonly(d, names, challenge), "certbot certonly")

    def first_run(self, d, certs):
        return self.certonly(d, certs[0], "http-01")

    def reissue(self, d, certs, challenge):
        if len(certs) == 1:
            return self.certonly(d, certs[0], challenge, "--force-renewal")
        return self.command(d, "renew", "--force-renewal", "--no-random-sleep-on-renew")

    def daily(self, d, certs):
        return self.command(d, "renew", "--no-random-sleep-on-renew")

    def issued_files(self, d, name):
        folder = os.path.join(d, "conf", "live", name)
        return os.path.join(folder, "cert.pem"), os.path.join(folder, "privkey.pem")


class Uacme(Client):
    name = "uacme"

    def base(self, d):
        return ["uacme", "-c", d, "-a", self.lab.url, "-t", "EC"]

    def new(self, d):
        return Command(self.base(d) + ["-y", "new", EMAIL], cwd=d)

    def issue(self, d, names, challenge, force=False):
        if challenge == "http-01":
            hook = "/usr/share/uacme/uacme.sh"
        else:
            hook = self.lab.hooks["uacme"]
        flags = ["-f"] if force else []
        argv = self.base(d) + flags + ["-h", hook, "issue", *names]
        return Command(argv, env={"UACME_CHALLENGE_PATH": self.lab.challenges}, cwd=d)

    def set_up(self, d, certs, challenge):
        self.lab.run_setup(self.new(d), "uacme new")
        for names in certs:
            self.lab.run_setup(self.issue(d, names, challenge), "uacme issue")

    def first_run(self, d, certs):
        issue = self.issue(d, certs[0], "http-01")
        return shell_steps([(self.new(d).argv, 0), (issue.argv, 0)], env=issue.env, cwd=d)

    def reissue(self, d, certs, challenge):
        if len(certs) == 1:
            command = self.issue(d, certs[0], challenge, force=True)
        else:
            one = self.issue(d, ["{name}"], challenge, force=True)
            command = shell_loop([c[0] for c in certs], one.argv, 0, env=one.env, cwd=d)
        command.before = lambda: self.forget_backups(d)
        return command

    @staticmethod
    def forget_backups(d):
        """uacme keeps the certificate it replaces as cert-<notBefore, in seconds>.pem and fails
        when that name is taken, which happens when two runs issue within one second."""
        for path in glob.glob(os.path.join(d, "*", "cert-*.pem")):
            os.unlink(path)

    def daily(self, d, certs):
        # uacme exits 1 when the certificate is still current: "not reissued" is success here.
        one = self.issue(d, ["{name}"], "http-01")
        return shell_loop([c[0] for c in certs], one.argv, 1, env=one.env, cwd=d)

    def issued_files(self, d, name):
        return os.path.join(d, name, "cert.pem"), os.path.join(d, "private", name, "key.pem")


# ---------------------------------------------------------------------------------------------
# Synthetic state for the noop scenarios


def clone_template(d, names, leaf_pem, key_pem, fakes, fake_key_pem, fake_ca_pem):
    """Copies every file and symlink of the TEMPLATE certificate in state folder d (every path
    under d with TEMPLATE in it) once per name: TEMPLATE in paths, link targets and text becomes
    the name; in certificate files the template's certificate becomes the name's fake one and
    every other certificate (Pebble's issuer) the fake CA; its key becomes the fake key.
    Then removes the template's own files."""
    entries = []
    tops = []
    for folder, dirs, files in os.walk(d):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            relative = os.path.relpath(path, d)
            if TEMPLATE in entry and TEMPLATE not in os.path.dirname(relative):
                tops.append(path)
            if TEMPLATE in relative and not (os.path.isdir(path) and not os.path.islink(path)):
                entries.append(relative)
    if not entries:
        raise BenchError(f"no files of {TEMPLATE} found in {d}")
    for name in names:
        for relative in entries:
            source = os.path.join(d, relative)
            target = os.path.join(d, relative.replace(TEMPLATE, name))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.islink(source):
                os.symlink(os.readlink(source).replace(TEMPLATE, name), target)
                continue
            text = read_file(source)
            if "-----BEGIN CERTIFICATE-----" in text:
                for block in certificates_in(text):
                    text = text.replace(block, fakes[name] if block == leaf_pem else fake_ca_pem)
            elif text.strip() == key_pem.strip():
                text = fake_key_pem
            else:
                text = text.replace(TEMPLATE, name)
            with open(target, "w") as f:
                f.write(text)
            shutil.copymode(source, target)
    for path in tops:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def set_up_noop(lab, client, d, certs):
    """len(certs) valid, not due certificates in the client's own layout, copied from one real
    issuance (TEMPLATE) with each name's fake certificate put in."""
    client.set_up(d, [[TEMPLATE]], "http-01")
    cert_path, key_path = client.issued_files(d, TEMPLATE)
    leaf_pem = certificates_in(read_file(cert_path))[0]
    key_pem = read_file(key_path)
    names = [c[0] for c in certs]
    fakes = lab.fake_certificates(names)
    clone_template(d, names, leaf_pem, key_pem, fakes, read_file(lab.fake_key), read_file(lab.fake_ca))
    client.use_certificates(d, certs)


# ---------------------------------------------------------------------------------------------
# Scenarios


def scenario_certs(scenario):
    """The certificates of a scenario: a list of name lists, one per certificate."""
    if scenario in ("one-first", "one"):
        return [["example.org"]]
    if scenario == "san10":
        return [["example.org"] + [f"s{i}.example.org" for i in range(1, 10)]]
    if scenario.startswith("batch"):
        return [[f"b{i}.example.org"] for i in range(1, int(scenario.removeprefix("batch")) + 1)]
    if scenario == "dns1":
        return [["example.org", "*.example.org"]]
    count = int(scenario.removeprefix("noop"))
    return [[f"n{i}.example"] for i in range(1, count + 1)]


def bench_one(lab, client, scenario, runs, certs=None, synthetic=False, slow_ms=SLOW_RUN_MS,
              slow_runs=SLOW_RUNS):
    """Runs one client through one scenario. Returns the list of runs, or None when the client
    cannot do the scenario. `certs` replaces the scenario's (a scaled-down run); `synthetic`
    makes the state of a forced re-issue as that of the noop scenarios (no real issuance of
    each certificate first). Across the WAN a failed run is the last one, kept with `failed`."""
    certs = certs or scenario_certs(scenario)
    challenge = "dns-01" if scenario == "dns1" else "http-01"
    if not client.supports(challenge):
        progress(f"{scenario} / {client.name}: n/a")
        return None
    base = os.path.join(lab.root, "state", client.name, scenario)
    os.makedirs(base)
    try:
        if scenario == "one-first":
            def next_command(i):
                d = os.path.join(base, f"run{i}")
                os.makedirs(d)
                return client.first_run(d, certs)
            expected_orders = len(certs)
        elif scenario.startswith("noop"):
            set_up_noop(lab, client, base, certs)
            command = client.daily(base, certs)
            next_command = lambda i: command
            expected_orders = 0
        else:
            if synthetic:
                set_up_noop(lab, client, base, certs)
            else:
                client.set_up(base, certs, challenge)
            command = client.reissue(base, certs, challenge)
            next_command = lambda i: command
            expected_orders = len(certs)

        results = []
        i = 0
        while i < runs:
            label = f"{scenario} / {client.name}: run {i + 1}"
            result = lab.measure(next_command(i), label)
            if "failed" in result:
                progress(f"{label}/{runs}: failed, {result['failed']}")
                results.append(result)
                break
            if result["orders"] != expected_orders:
                raise BenchError(
                    f"{label}: {result['orders']} new orders, expected {expected_orders}"
                    + (" (the synthetic certificates were not accepted as valid)" if expected_orders == 0 else ""),
                    result["log"],
                )
            results.append(result)
            progress(f"{label}/{runs}: {result['wall_ms']:.0f} ms, {result['requests']} requests")
            if i == 0 and result["wall_ms"] > slow_ms:
                runs = min(runs, slow_runs)
            i += 1
        if isinstance(client, Desiccant) and scenario in TRACED:
            # One more, unmeasured, with --verbose: its trace shows where the time goes.
            command = next_command(i)
            _, client.traces[scenario] = run_process(command.argv + ["--verbose"],
                                                     env=dict(os.environ, **command.env), cwd=command.cwd)
        if isinstance(client, Desiccant) and scenario == "dns1":
            client.hook_floor = client.measure_hook_floor(lab, runs)
        return results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def progress(text):
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md


def summarize(results):
    return {
        "runs": len(results),
        "wall_ms": statistics.median(r["wall_ms"] for r in results),
        "cpu_ms": statistics.median(r["cpu_ms"] for r in results),
        "rss_mib": statistics.median(r["rss_mib"] for r in results),
        "requests": statistics.median(r["requests"] for r in results),
        "nonces": statistics.median(r.get("nonces", 0) for r in results),
    }


def number(value):
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def versions(desiccant):
    def package(name):
        return command_output(["dpkg-query", "-W", "-f", "${Version}", name])

    dehydrated = [line for line in command_output(["dehydrated", "--version"]).splitlines()
                  if line.startswith("Dehydrated version:")]
    return {
        "desiccant": command_output([desiccant, "--version"]),
        "dehydrated": (dehydrated[0] if dehydrated else "?") + f" (Debian {package('dehydrated')})",
        "lego": command_output(["lego", "--version"]).splitlines()[0] + f" (Debian {package('lego')})",
        "certbot": command_output(["certbot", "--version"]) + f" (Debian {package('certbot')})",
        "uacme": command_output(["uacme", "-V"]).splitlines()[0] + f" (Debian {package('uacme')})",
        "pebble": f"Debian {package('pebble')}",
    }


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": command_output(["nproc"]),
        "cpu": model,
        "kernel": os.uname().release,
    }


def markdown(table, clients, scenarios, info, command_line, pebble_validity):
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("desiccant against dehydrated, lego, certbot and uacme (Debian packages), every client "
        "issuing from the same local Pebble ACME test server on 127.0.0.1.")
    add("")
    add(f"- Date: {info['date']}")
    add(f"- Produced by: `{command_line}`")
    add(f"- Machine: {info['machine']['nproc']} CPUs (`nproc`), {info['machine']['cpu']}, "
        f"Linux {info['machine']['kernel']}")
    for name in CLIENT_NAMES:
        if name in clients:
            # desiccant --version has three lines: the version, then the TLS and crypto backends.
            add(f"- {name}: {'; '.join(info['versions'][name].splitlines())}")
    add(f"- Pebble: {info['versions']['pebble']}, with "
        + " ".join(f"`{k}={v}`" for k, v in PEBBLE_ENV.items())
        + f" (no validation sleeps, no refused nonces, no reused authorizations); "
        f"certificate validity {pebble_validity}; `pebble-challtestsrv` as its DNS server "
        "(every name is 127.0.0.1), nginx serving the http-01 webroot")
    add("")
    add("Every client trusts Pebble through the system CA store (`/etc/ssl/certs/ca-certificates.crt`, "
        "with Pebble's CA added in a private mount namespace) and uses ECDSA P-256 certificate keys. "
        "Each number is the median of several runs (3 when one run takes over 10 s). Wall time is "
        "the measured command, or shell loop for clients that issue one certificate per process; "
        "CPU is user + system time of all its processes; peak RSS is the largest single process; "
        "requests are the ACME requests Pebble handled during the run. The measuring step "
        "(`bench.py --measure`: the client is started through `setsid --fork` and `sh`) "
        f"includes about {info['baseline']['wall_ms']:.1f} ms of wall time and shows "
        f"{info['baseline']['rss_mib']:.1f} MiB peak RSS for `true`; these are in every number.")
    add("")
    add("Scenarios:")
    add("")
    for scenario in scenarios:
        add(f"- `{scenario}`: {SCENARIO_TEXT[scenario]}")
    add("")
    add("The noop state is synthetic: one real issuance per client shows its on-disk layout, "
        "which is copied for `n1.example` ... `nN.example`, each with a 90-day certificate made by "
        "`openssl req -x509` (one key, issued by one fake CA that stands in for Pebble's "
        "intermediate). Every noop run is checked to create no order.")
    add("")
    add("## Summary: median wall time, ms")
    add("")
    peers = [name for name in CLIENT_NAMES if name in clients and name != "desiccant"]
    header = ["scenario"] + [name for name in CLIENT_NAMES if name in clients]
    if "desiccant" in clients and peers:
        header.append("desiccant vs fastest peer")
    add("| " + " | ".join(header) + " |")
    add("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for scenario in scenarios:
        row = [f"`{scenario}`"]
        for name in CLIENT_NAMES:
            if name not in clients:
                continue
            summary = table.get((scenario, name))
            if summary is None:
                row.append("n/a")
            else:
                row.append(f"{summary['wall_ms']:.0f}")
        if "desiccant" in clients and peers:
            ours = table.get((scenario, "desiccant"))
            measured = [(table[(scenario, p)]["wall_ms"], p) for p in peers if table.get((scenario, p))]
            if ours is None or not measured:
                row.append("n/a")
            else:
                fastest_ms, fastest = min(measured)
                if ours["wall_ms"] <= fastest_ms:
                    row.append(f"{fastest_ms / ours['wall_ms']:.1f}× faster than {fastest}")
                else:
                    row.append(f"{ours['wall_ms'] / fastest_ms:.1f}× slower than {fastest}")
        add("| " + " | ".join(row) + " |")
    add("")
    if "desiccant" in clients:
        add("## The targets")
        add("")
        add("What desiccant is meant to reach (medians, measured in this run); where it falls "
            "short, why.")
        add("")
        add("| target | reached | met |")
        add("|---|---|:---:|")
        for target, reached, met, why in targets(table, clients, scenarios, info):
            add(f"| {target} | {reached} | {'yes' if met else 'no: ' + why} |")
        add("")
    add("## All measurements (medians)")
    add("")
    add("| scenario | client | runs | wall ms | CPU ms | peak RSS MiB | requests |")
    add("|---|---|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        for name in CLIENT_NAMES:
            if name not in clients:
                continue
            summary = table.get((scenario, name))
            if summary is None:
                add(f"| `{scenario}` | {name} | n/a | | | | |")
            else:
                add(f"| `{scenario}` | {name} | {summary['runs']} | {summary['wall_ms']:.0f} | "
                    f"{summary['cpu_ms']:.0f} | {summary['rss_mib']:.1f} | "
                    f"{number(summary['requests'])} |")
    add("")
    add("## How each client is run")
    add("")
    for name in CLIENT_NAMES:
        if name in clients:
            add(f"- {name}: {CLIENT_TEXT[name]}.")
    add("")
    if info.get("itself"):
        itself = info["itself"]
        add("## desiccant itself")
        add("")
        add(f"- `desiccant --version`: {itself['--version']['wall_ms']:.1f} ms wall, "
            f"{itself['--version']['rss_mib']:.1f} MiB peak RSS (median of 20)")
        add(f"- `desiccant --help`: {itself['--help']['wall_ms']:.1f} ms wall (median of 20)")
        add(f"- the stripped release binary: {itself['size_mib']:.1f} MiB")
        add("")
        add(f"Both include the measuring step's {info['baseline']['wall_ms']:.1f} ms.")
        add("")
    for scenario, explained in EXPLAINED.items():
        if scenario not in scenarios or "desiccant" not in clients:
            continue
        add(f"## Where desiccant's time goes in `{scenario}`")
        add("")
        add(explained)
        add("")
        floor = info.get("hook_floor")
        if scenario == "dns1" and floor:
            add(f"Measured in the same run: those {floor.get('processes', 8)} hook runs alone, one "
                f"after the other in one "
                f"bash script with no client, take {floor['wall_ms']:.0f} ms (median of "
                f"{floor['runs']}), {floor['cpu_ms']:.0f} ms of CPU, and peak at "
                f"{floor['rss_mib']:.1f} MiB.")
            add("")
        trace = info.get("traces", {}).get(scenario)
        if trace:
            add(f"The `--verbose` output of one more run of `{scenario}`, after the measured ones "
                "(each line with the milliseconds since the start; URLs shortened):")
            add("")
            add("```")
            for line in trace.splitlines():
                add(re.sub(r"https://127\.0\.0\.1:\d+", "", re.sub(r"/[A-Za-z0-9_-]{20,}", "/…", line)))
            add("```")
            add("")
    return "\n".join(lines)


def targets(table, clients, scenarios, info):
    """(target, figure reached, met, why not) for each target desiccant is held to that this
    run measured."""
    rows = []
    ours = {sc: table.get((sc, "desiccant")) for sc in scenarios}
    peers = [c for c in clients if c != "desiccant"]

    def fastest_peer(sc):
        measured = [(table[(sc, p)]["wall_ms"], p) for p in peers if table.get((sc, p))]
        return min(measured) if measured else None

    limits = {"noop100": 20, "noop1000": 100, "one": 60, "dns1": 80, "san10": 150, "batch20": 600}
    for sc, limit in limits.items():
        if not ours.get(sc):
            continue
        wall = ours[sc]["wall_ms"]
        why = WHY_MISSED.get(sc, "")
        if sc == "dns1" and info.get("hook_floor"):
            why = (f"the hook's own {info['hook_floor'].get('processes', 8)} processes take "
                   f"{info['hook_floor']['wall_ms']:.0f} ms of it "
                   "(measured alone; see below)")
        rows.append((f"`{sc}` under {limit} ms", f"{wall:.0f} ms", wall < limit, why))
        fastest = fastest_peer(sc)
        if fastest and sc not in ("noop100", "noop1000"):
            ratio = fastest[0] / wall
            rows.append((f"`{sc}` at least 4× faster than the fastest peer",
                         f"{ratio:.1f}× ({fastest[1]}: {fastest[0]:.0f} ms)", ratio >= 4, ""))
    # dns1's processes include the hook's (bash, curl): it has a row of its own.
    measured = [v for sc, v in ours.items() if v and sc != "dns1"]
    if measured:
        rss = max(v["rss_mib"] for v in measured)
        rows.append(("peak RSS under 10 MiB, every scenario but `dns1`", f"{rss:.1f} MiB at most",
                     rss < 10, ""))
    if ours.get("dns1"):
        rss = ours["dns1"]["rss_mib"]
        floor = info.get("hook_floor")
        why = (f"the largest process of the run is one of the hook's: its "
               f"{floor.get('processes', 8) if floor else 8} processes alone "
               f"peak at {floor['rss_mib']:.1f} MiB (`curl`)" if floor else "")
        rows.append(("`dns1` peak RSS under 10 MiB", f"{rss:.1f} MiB", rss < 10, why))
    if ours.get("one"):
        n = ours["one"]["requests"]
        rows.append(("`one` sends at most 9 requests", number(n), n <= 9, ""))
    if ours.get("san10"):
        n = ours["san10"]["requests"]
        rows.append(("`san10` sends at most 3 per name plus 6 (36)", number(n), n <= 36, ""))
    for sc in scenarios:
        if not ours.get(sc) or not peers:
            continue
        counts = [(table[(sc, p)]["requests"], p) for p in peers if table.get((sc, p))]
        if not counts:
            continue
        fewest, who = min(counts)
        n = ours[sc]["requests"]
        ties = ", ".join(p for c, p in counts if c == n)
        why = WHY_MISSED["requests"].format(who=ties or who) if n == fewest else ""
        if why and sc == "one-first":
            why += "; and before them `newAccount`"
        rows.append((f"`{sc}`: fewer requests than any peer", f"{number(n)} (fewest of the peers: "
                     f"{number(fewest)}, {who})", n < fewest or (n == 0 and fewest == 0), why))
    for sc in scenarios:
        if not ours.get(sc) or sc.startswith("noop") or "nonces" not in ours[sc]:
            continue
        n = ours[sc]["nonces"]
        counts = [(table[(sc, p)].get("nonces", 0), p) for p in peers if table.get((sc, p))]
        context = f" (fewest of the peers: {number(min(counts)[0])}, {min(counts)[1]})" if counts else ""
        rows.append((f"`{sc}`: one `newNonce` request per run", f"{number(n)}{context}", n <= 1,
                     WHY_MISSED["nonces"] if n > 1 else ""))
    itself = info.get("itself")
    if itself:
        base = info["baseline"]["wall_ms"]
        for flag in ("--version", "--help"):
            wall = itself[flag]["wall_ms"]
            rows.append((f"`{flag}` starts and exits in under 5 ms",
                         f"{wall:.1f} ms, the measuring step included (alone, with `true`: "
                         f"{base:.1f} ms)",
                         wall < 5, ""))
        rows.append(("the stripped release binary under 8 MiB", f"{itself['size_mib']:.1f} MiB",
                      itself["size_mib"] < 8, ""))
    return rows


# Why a target was missed, when it was (see targets()).
WHY_MISSED = {
    "requests": "as few as {who}: for one order of one name against a CA that validates and "
                "signs in the background, as Pebble and Let's Encrypt do, RFC 8555 leaves no "
                "request out: the directory (it has the URLs; Pebble's brings no nonce), one "
                "`newNonce`, `newOrder`, the authorization (it has the token), the challenge "
                "answer, one look at the order (is it ready?), finalize, one more look (the "
                "certificate's URL), the certificate",
    "nonces": "requests sent side by side need a nonce each: every signed request spends one and "
              "its answer brings one back, so with one `newNonce` for the run only one request "
              "could be on its way at a time, and the authorizations (or certificates) would "
              "wait on one another, a round trip each (half a millisecond here, 50 ms or more to "
              "a CA across the internet: half a second for ten names, for fetching and again for "
              "answering); a request that finds the pool empty waits for an answer in flight when "
              "one is free for it, so only those that start side by side ask",
}


ONE_EXPLAINED = """\
A forced re-issue of one name is 9 requests: the directory, one nonce, newOrder, the
authorization, the challenge answer, one look at the order once validated, finalize, one look
at the order once signed, and the certificate. Pebble answers each in well under a
millisecond; what remains is waiting, and a little of our own work:

- **Start and TLS**: the process starts, reads the config, `domains.txt` and the live
  certificate, and opens one TLS connection (kept alive for every request) before the
  directory comes back.
- **Validation wait**: after the challenge is answered, the first look at the order is 4 ms
  later (or eight of the CA's quickest round trips, when that is longer); Pebble has validated
  by then. A CA elsewhere takes a second or two; the pauses grow by half each time, up to 2 s.
- **Signing wait**: after finalize, the first look is 4 ms later.
- **Key and CSR**: made on their own thread while the order goes on (ECDSA P-256: well under a
  millisecond), so they never wait on the network nor it on them. Each request is signed
  (ES256) in microseconds.
- **Writing**: the five files, each written under a temporary name, fsynced and renamed, then
  the folder fsynced, then the links switched and the folder fsynced again: a few
  milliseconds, nearly all of it the disk's flushes, the price of a certificate that survives
  a power cut."""


DNS1_EXPLAINED = """\
`dns1` is 11 requests: those of `one` with a second authorization and challenge (fetched and
answered side by side; the second waits for the nonce of the first one's answer rather than
asking `newNonce`). Most of its time is the hook, run as dehydrated runs it (`HOOK_CHAIN=no`):
10 processes, one after the other, never two at once, each a bash script and the
`deploy_challenge` and `clean_challenge` ones a `curl` to the DNS server too:

- **Before the order**: the start-up check with a handler no hook knows, `startup_hook` (while
  it runs, the directory and a nonce are fetched: the certificate on disk says it will be
  ordered) and `generate_csr` (which may name other names, so the order waits for it).
- **Publishing**: `deploy_challenge` for `example.org` and for `*.example.org` (both as
  `example.org`), then one look at the name server (`DNS_CHECK_SERVERS`) that finds both TXT
  records, then both challenges answered.
- **Validation and signing**: as in `one`; the two `clean_challenge` runs start as soon as the
  order is validated and go on while it is finalized, downloaded and written.
- **After the certificate**: what is left of the `clean_challenge` runs, then `sync_cert`, the
  links switched, `deploy_cert` and `exit_hook`.

So a faster hook (one without `curl`, or `HOOK_CHAIN=yes`: one `deploy_challenge` and one
`clean_challenge` for both names), or the built-in RFC 2136 updates (`DNS_UPDATE_SERVER`, no
process at all), makes `dns1` faster; the client's own part is the same as in `one`."""

# The scenarios whose desiccant run is explained, and traced with --verbose once more.
EXPLAINED = {"one": ONE_EXPLAINED, "dns1": DNS1_EXPLAINED}
TRACED = set(EXPLAINED)


# ---------------------------------------------------------------------------------------------
# The WAN bench: the same clients, each reaching Pebble through tests/common/wan_relay.py


# Pebble's validation delay across the WAN: a random whole number of seconds from 0 to N-1
# before each validation (PEBBLE_VA_SLEEPTIME=3: 0, 1 or 2 s, as a CA validating from several
# places takes one to several seconds).
VA_SLEEPTIME = 3
WAN_PEBBLE_ENV = {"PEBBLE_VA_SLEEPTIME": str(VA_SLEEPTIME), "PEBBLE_WFE_NONCEREJECT": "0",
                  "PEBBLE_AUTHZREUSE": "0"}
WAN_SCENARIOS = ["one", "san10", "batch100", "batch1000", "noop10000"]
# One Pebble and relay per setting: (key, round trip ms or None for loopback, validation delay,
# scenarios).
WAN_SETTINGS = [
    ("50ms", 50, False, ["one"]),
    ("50ms+va", 50, True, ["one", "san10", "batch100", "batch1000"]),
    ("150ms+va", 150, True, ["one", "san10", "batch100"]),
    ("loopback", None, False, ["noop10000"]),
]
WAN_SETTING_TEXT = {
    "50ms": "50 ms",
    "50ms+va": "50 ms, validation 0-2 s",
    "150ms+va": "150 ms, validation 0-2 s",
    "loopback": "loopback",
}
WAN_SCENARIO_TEXT = {
    "one": "account and certificate exist: forced re-issue of one name",
    "san10": "forced re-issue of one certificate with 10 names (apex + 9 sub-names)",
    "batch100": "forced re-issue of 100 certificates of one name each, in one run where the client can",
    "batch1000": "forced re-issue of 1,000 certificates of one name each, in one run",
    "noop10000": "10,000 valid certificates, nothing due: the daily run of a hosting provider "
                 "(on loopback: it sends no request)",
}
# The peers issue one certificate after another (one process each, or certbot's `renew`): in
# batch100 they issue 10 and their time and requests are multiplied by 10. They are not run in
# batch1000 (hours each) nor noop10000 (their noop1000 on loopback shows their cost per
# certificate).
PEER_SCALE = {"batch100": 10}
PEER_SKIP = {"batch1000", "noop10000"}
# Synthetic state (as the noop scenarios') for the batches: no real issuance of each certificate
# before the measured runs, through the relay, which would take as long as the runs.
WAN_SYNTHETIC = {"batch100", "batch1000"}
# A first run longer than this: the only one.
WAN_SLOW_MS = 20_000
# `one`: the directory, newNonce, newOrder, the authorization, the challenge answer, one look
# at the order, finalize, one more look, the certificate (see WHY_MISSED), after the TCP
# handshake and TLS 1.3's one round trip: its floor is this many round trips.
ONE_FLOOR_ROUND_TRIPS = 11
WAN_MARK = "<!-- The section below is made by `tests/bench/run.sh --wan --write`; the one above by `tests/bench/run.sh --write`. -->"


def wan_plan(args):
    """[(setting key, rtt, delay, [scenario])] that this run measures."""
    plan = []
    for key, rtt, delay, scenarios in WAN_SETTINGS:
        chosen = [sc for sc in scenarios if sc in args.scenario_list]
        if chosen:
            plan.append((key, rtt, delay, chosen))
    return plan


def summarize_wan(results, scale, certs_run):
    """A WAN row: medians of the runs that succeeded (time and requests multiplied by `scale`
    for a scaled-down run), the worst run's 503s and 429s and each endpoint's highest peak."""
    ok = [r for r in results if "failed" not in r]
    relayed = [r["relay"] for r in results if r.get("relay")]
    row = {"runs": len(ok), "scale": scale, "certs_run": certs_run,
           "failed": next((r["failed"] for r in results if "failed" in r), None)}
    if ok:
        requests = statistics.median(r["requests"] for r in ok)
        row.update(wall_ms=statistics.median(r["wall_ms"] for r in ok) * scale,
                   cpu_ms=statistics.median(r["cpu_ms"] for r in ok) * scale,
                   rss_mib=statistics.median(r["rss_mib"] for r in ok),
                   requests=requests * scale, per_cert=requests / certs_run,
                   nonces=statistics.median(r["nonces"] for r in ok) * scale)
    if relayed:
        row["503"] = max(s["total"]["503"] for s in relayed)
        row["429"] = max(s["total"]["429"] for s in relayed)
        peaks = {}
        for stats in relayed:
            for name, entry in list(stats["endpoints"].items()) + \
                    [(f"class:{c}", e) for c, e in stats["classes"].items()]:
                peaks[name] = max(peaks.get(name, 0), entry["peak_per_second"])
        row["peaks"] = peaks
        row["limits"] = {c: e["limit"] for c, e in relayed[0]["classes"].items()}
    return row


def run_wan(args, desiccant):
    """Measures the WAN plan; returns what render_wan needs."""
    saved = {"clients": args.client_list, "plan": [], "rows": [], "traces": {},
             "command_line": command_line(),
             "info": {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                      "machine": machine(), "versions": versions(desiccant)}}
    started = time.monotonic()
    for key, rtt, delay, scenarios in wan_plan(args):
        env = WAN_PEBBLE_ENV if delay else PEBBLE_ENV
        lab = Lab(pebble_env=env, rtt_ms=rtt)
        try:
            lab.start()
            progress(f"-- {WAN_SETTING_TEXT[key]}: CA {lab.url}")
            everyone = {
                "desiccant": Desiccant(lab, desiccant),
                "dehydrated": Dehydrated(lab),
                "lego": Lego(lab),
                "certbot": Certbot(lab),
                "uacme": Uacme(lab),
            }
            saved["plan"].append([key, rtt, delay, scenarios])
            if rtt is not None:
                saved["info"].setdefault("relay_ms", {})[key] = relay_round_trip(lab)
            for scenario in scenarios:
                for name in args.client_list:
                    client = everyone[name]
                    certs = scenario_certs(scenario)
                    scale = 1
                    if name != "desiccant":
                        if scenario in PEER_SKIP:
                            continue
                        if scenario in PEER_SCALE:
                            scale = PEER_SCALE[scenario]
                            certs = certs[:len(certs) // scale]
                    try:
                        results = bench_one(lab, client, scenario, args.runs, certs=certs,
                                            synthetic=scenario in WAN_SYNTHETIC,
                                            slow_ms=WAN_SLOW_MS, slow_runs=1)
                    except BenchError as error:
                        # A client that cannot be set up (or misbehaves) across the WAN is a
                        # result too; the others go on.
                        progress(f"{scenario} / {name}: failed: {error}\n{error.output[-2000:]}")
                        saved["rows"].append([key, scenario, name, {
                            "runs": 0, "scale": scale, "certs_run": len(certs),
                            "failed": str(error).splitlines()[0][:300]}])
                        save_wan(saved)
                        continue
                    if results:
                        row = summarize_wan(results, scale, len(certs))
                        saved["rows"].append([key, scenario, name, row])
                        save_wan(saved)
            if "one" in everyone["desiccant"].traces:
                saved["traces"][key] = everyone["desiccant"].traces["one"]
        finally:
            lab.stop()
    saved["info"]["minutes"] = (time.monotonic() - started) / 60
    save_wan(saved)
    return saved


def relay_round_trip(lab):
    """The median time of a kept-alive GET of the directory through the relay (curl, 20 on one
    connection after the first): the round trip and the relay's own cost."""
    url = lab.url
    status, output = run_process(["curl", "-sS", "-w", "%{time_total}\n"]
                                 + ["-o", "/dev/null", url] * 21)
    if status != 0:
        raise BenchError("curl through the WAN relay failed", output)
    times = [float(line) * 1000 for line in output.split()[1:]]
    return statistics.median(times)


def save_wan(saved):
    os.makedirs(os.path.dirname(WAN_RESULTS), exist_ok=True)
    with open(WAN_RESULTS, "w") as f:
        json.dump(saved, f, indent=1)


def seconds(ms):
    return f"{ms / 1000:.2f}" if ms < 10_000 else f"{ms / 1000:.1f}" if ms < 100_000 else f"{ms / 1000:.0f}"


def peaks_text(row):
    """The endpoints' peak requests per second, busiest first, with each limit class's figure."""
    peaks = row.get("peaks", {})
    limits = row.get("limits", {})
    parts = []
    for name, peak in sorted(peaks.items(), key=lambda item: (-item[1], item[0])):
        if name.startswith("class:") or not peak:
            continue
        parts.append(f"{name} {peak}")
    classes = []
    for name, peak in sorted(peaks.items()):
        if name.startswith("class:") and peak and limits.get(name[6:]):
            classes.append(f"{name[6:]} {peak}/{limits[name[6:]]['rate']:g}")
    text = ", ".join(parts)
    if classes:
        text += " (per limit class, peak/limit: " + ", ".join(classes) + ")"
    return text


def render_wan(saved):
    """The WAN section of BENCHMARKS.md."""
    rows = {(key, sc, name): row for key, sc, name, row in saved["rows"]}
    clients = saved["clients"]
    plan = saved["plan"]
    info = saved["info"]
    peers = [c for c in clients if c != "desiccant"]
    lines = []
    add = lines.append
    add("## Across a WAN: a CA 50 and 150 ms away, with its request limits")
    add("")
    add("The same clients, each reaching the same kind of Pebble through `tests/common/wan_relay.py`, "
        "which stands for the internet and for Let's Encrypt's load balancer: every byte each way "
        "arrives half a round trip late, at TCP level (so a new connection's TCP and TLS handshakes "
        "cost their round trips), and Let's Encrypt's published per-IP request limits are token "
        "buckets in front of Pebble (new-nonce 20/s with a burst of 10, new-account 5/s (15), "
        "new-order 300/s (200), directory 40/s (40), renewal-info 1000/s (100), every other ACME "
        "endpoint 250/s (125); every loopback client is one IP), answering `503` with `Retry-After` "
        "beyond them. The per-account order limit is off here (Let's Encrypt's 300 new orders in 3 "
        "hours would stop `batch1000` at 300).")
    add("")
    add(f"- Date: {info['date']}")
    add(f"- Produced by: `{saved['command_line']}`"
        + (f", in {info['minutes']:.0f} min" if info.get("minutes") else ""))
    add(f"- Machine: {info['machine']['nproc']} CPUs, {info['machine']['cpu']}; the versions "
        "are those above")
    add(f"- Pebble: as above, but with `PEBBLE_VA_SLEEPTIME={VA_SLEEPTIME}` (a random 0, 1 or 2 s "
        "before each validation) instead of `PEBBLE_VA_NOSLEEP=1` where the setting says "
        "\"validation 0-2 s\"")
    relay_ms = info.get("relay_ms", {})
    if relay_ms:
        add("- The relay's own cost: a kept-alive GET of the directory through it (curl, median of "
            "20) took " + "; ".join(f"{ms:.1f} ms in the setting \"{WAN_SETTING_TEXT[key]}\""
                                   for key, ms in relay_ms.items())
            + " (the round trip, Pebble's answer and the relay's own work in Python)")
    add("")
    add("Scenarios:")
    add("")
    for sc in WAN_SCENARIOS:
        if any(sc in p[3] for p in plan):
            add(f"- `{sc}`: {WAN_SCENARIO_TEXT[sc]}")
    add("")
    add("Each number is the median of the runs (3, or 1 when the first takes over 20 s); "
        "requests are all those the relay received, refused ones included; `503` and `429` "
        "are the refusals of the worst run; the peak is the most requests of an endpoint that "
        "arrived within any one second, the highest of the runs. The batches start from "
        "synthetic state (as the noop scenarios: one real issuance copied for every name) and "
        f"re-issue every certificate. The peers issue one certificate after another, so in "
        f"`batch100` they issue {100 // PEER_SCALE['batch100']} and their time and requests are "
        f"multiplied by {PEER_SCALE['batch100']} (marked ×{PEER_SCALE['batch100']}); they are not "
        "run in `batch1000` (hours each) nor in `noop10000` (see their `noop1000` above).")
    add("")

    def cell(key, sc, name):
        row = rows.get((key, sc, name))
        if row is None:
            return "n/a"
        if "wall_ms" not in row:
            return "failed"
        text = seconds(row["wall_ms"])
        if row.get("scale", 1) != 1:
            text += f" (×{row['scale']})"
        if row.get("failed"):
            text += " (then failed)"
        return text

    def fastest_peer(key, sc):
        measured = [(rows[(key, sc, p)]["wall_ms"], p) for p in peers
                    if "wall_ms" in rows.get((key, sc, p), {})]
        return min(measured) if measured else None

    add("### Summary: median wall time, s")
    add("")
    header = ["scenario", "round trip"] + clients
    if "desiccant" in clients and peers:
        header.append("desiccant vs fastest peer")
    add("| " + " | ".join(header) + " |")
    add("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|")
    for key, rtt, delay, scenarios in plan:
        for sc in scenarios:
            line = [f"`{sc}`", WAN_SETTING_TEXT[key]] + [cell(key, sc, c) for c in clients]
            if "desiccant" in clients and peers:
                ours = rows.get((key, sc, "desiccant"), {})
                fastest = fastest_peer(key, sc)
                if "wall_ms" in ours and fastest:
                    ratio = fastest[0] / ours["wall_ms"]
                    line.append(f"{ratio:.1f}× faster than {fastest[1]}" if ratio >= 1
                                else f"{1 / ratio:.1f}× slower than {fastest[1]}")
                else:
                    line.append("n/a")
            add("| " + " | ".join(line) + " |")
    add("")
    if "desiccant" in clients:
        add("### The targets")
        add("")
        add("Issue 19's targets for desiccant across the WAN (medians, measured in this run).")
        add("")
        add("| target | reached | met |")
        add("|---|---|:---:|")
        for target, reached, met in wan_targets(rows, peers):
            add(f"| {target} | {reached} | {'yes' if met else 'no'} |")
        add("")
    add("### All measurements")
    add("")
    add("| scenario | round trip | client | runs | wall s | CPU s | peak RSS MiB | requests | "
        "per cert | 503 | 429 | peak requests/s per endpoint |")
    add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, rtt, delay, scenarios in plan:
        for sc in scenarios:
            for name in clients:
                row = rows.get((key, sc, name))
                if row is None:
                    continue
                scale = f" (×{row['scale']})" if row.get("scale", 1) != 1 else ""
                if "wall_ms" in row:
                    figures = [str(row["runs"]), seconds(row["wall_ms"]) + scale,
                               f"{row['cpu_ms'] / 1000:.2f}" + scale, f"{row['rss_mib']:.1f}",
                               number(row["requests"]) + scale, f"{row['per_cert']:.1f}"]
                else:
                    figures = ["0", "failed", "", "", "", ""]
                peaks = peaks_text(row) if rtt else "no request sent" if row.get("requests") == 0 else ""
                if row.get("failed"):
                    peaks += f"; a run failed: {row['failed']}"
                add(f"| `{sc}` | {WAN_SETTING_TEXT[key]} | {name} | " + " | ".join(figures)
                    + f" | {row.get('503', '') if rtt else ''} | {row.get('429', '') if rtt else ''} | {peaks} |")
    add("")
    for key, trace in saved.get("traces", {}).items():
        add(f"### desiccant's `one` at {WAN_SETTING_TEXT[key]}")
        add("")
        add("The `--verbose` output of one more run, after the measured ones (milliseconds since "
            "the start; URLs shortened):")
        add("")
        add("```")
        for line in trace.splitlines():
            add(re.sub(r"https://127\.0\.0\.1:\d+", "", re.sub(r"/[A-Za-z0-9_-]{20,}", "/…", line)))
        add("```")
        add("")
    return "\n".join(lines)


def wan_targets(rows, peers):
    """(target, reached, met) for issue 19's targets that this run measured."""
    out = []

    def row(key, sc):
        r = rows.get((key, sc, "desiccant"))
        return r if r and "wall_ms" in r else None

    def fastest(key, sc):
        measured = [(rows[(key, sc, p)]["wall_ms"], p) for p in peers
                    if "wall_ms" in rows.get((key, sc, p), {})]
        return min(measured) if measured else None

    one = row("50ms", "one")
    if one:
        floor = ONE_FLOOR_ROUND_TRIPS * 50
        ratio = one["wall_ms"] / floor
        out.append((f"`one` at 50 ms, no validation delay: within 1.3× of its floor "
                    f"({ONE_FLOOR_ROUND_TRIPS} round trips: TCP, TLS 1.3 and 9 requests, {floor} ms)",
                    f"{seconds(one['wall_ms'])} s, {ratio:.2f}× the floor", ratio <= 1.3))
        peer = fastest("50ms", "one")
        if peer:
            r = peer[0] / one["wall_ms"]
            # A peer already near the floor cannot be halved by anyone: say so with the figures.
            impossible = (f"; half of {peer[1]}'s time, {peer[0] / 2:.0f} ms, is below the floor "
                          f"of {floor} ms, so no client can reach it"
                          if r < 2 and peer[0] / 2 < floor else "")
            out.append(("`one` at 50 ms: at least 2× faster than the fastest peer",
                        f"{r:.1f}× ({peer[1]}: {seconds(peer[0])} s){impossible}", r >= 2))
    batch = row("50ms+va", "batch100")
    if batch:
        peer = fastest("50ms+va", "batch100")
        if peer:
            r = peer[0] / batch["wall_ms"]
            scale = rows[("50ms+va", "batch100", peer[1])].get("scale", 1)
            out.append(("`batch100` at 50 ms with validation delay: at least 20× faster than the "
                        "fastest peer",
                        f"{r:.1f}× ({peer[1]}: {seconds(peer[0])} s"
                        + (f", its 10 certificates ×{scale}" if scale != 1 else "") + ")", r >= 20))
        out.append(("`batch100` at 50 ms: no 503", str(batch.get("503", "?")), batch.get("503") == 0))
        out.append(("`batch100` at 50 ms: at most 12 requests per certificate",
                    f"{batch['per_cert']:.1f}", batch["per_cert"] <= 12))
    big = rows.get(("50ms+va", "batch1000", "desiccant"))
    if big:
        finished = "wall_ms" in big and not big.get("failed")
        out.append(("`batch1000` at 50 ms: finishes, no 503, no rate-limit problem",
                    (f"{seconds(big['wall_ms'])} s, {number(big['requests'])} requests; " if finished
                     else f"failed ({big.get('failed')}); ")
                    + f"503: {big.get('503', '?')}, 429: {big.get('429', '?')}",
                    finished and big.get("503") == 0 and big.get("429") == 0))
        over = [f"{c} {p}/{big['limits'][c]['rate']:g}" for c, p in
                ((name[6:], peak) for name, peak in big.get("peaks", {}).items() if name.startswith("class:"))
                if big["limits"].get(c) and p > big["limits"][c]["rate"]]
        out.append(("`batch1000`: every endpoint's peak requests per second under the published limit",
                    "over: " + ", ".join(over) if over else "all under", not over))
    noop = row("loopback", "noop10000")
    if noop:
        out.append(("`noop10000` under 500 ms", f"{noop['wall_ms']:.0f} ms", noop["wall_ms"] < 500))
        out.append(("`noop10000` under 30 MiB peak RSS", f"{noop['rss_mib']:.1f} MiB", noop["rss_mib"] < 30))
    return out


def write_benchmarks(text, wan):
    """Writes BENCHMARKS.md: the loopback part or (wan) the WAN section, keeping the other."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    try:
        old = read_file(path)
    except FileNotFoundError:
        old = ""
    head, mark, tail = old.partition(WAN_MARK)
    if wan:
        new = head.rstrip("\n") + "\n\n" + WAN_MARK + "\n\n" + text.rstrip("\n") + "\n"
    else:
        new = text.rstrip("\n") + "\n" + (f"\n{WAN_MARK}{tail.rstrip()}\n" if mark else "")
    with open(path, "w") as f:
        f.write(new)
    progress("wrote " + path)


# ---------------------------------------------------------------------------------------------
# Entry points


def measure_main(log_path, argv):
    """--measure LOG -- CMD...: runs CMD once (output to LOG) and prints one JSON line with its
    exit status, wall time, CPU time (user + sys) and peak RSS.

    A process's ru_maxrss also counts the memory it had before its exec, so a client forked
    straight from Python would never show less than this interpreter's ~14 MiB. So `setsid
    --fork` (small) forks the client's process and exits without waiting for it; that process
    runs sh, which prints its pid and execs the client. As a child subreaper, this process
    inherits it and reaps it (and anything it left behind) with wait4(), whose rusage covers the
    client and every child it waited for. A fresh helper per run: nothing earlier is counted.
    Starting through setsid and sh costs about 1-2 ms of wall time, the same for every client."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    with open(log_path, "wb") as log:
        fd = log.fileno()
        start = time.perf_counter()
        launcher = subprocess.Popen(
            ["setsid", "--fork", "sh", "-c", f'echo $$; exec "$@" >&{fd} 2>&{fd}', "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            pass_fds=(fd,),
        )
        client = int(launcher.stdout.read())
        launcher.wait()
        # Stopped by the driver: stop the client too (it leads its own process group).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: stop_client(client, signum))
        status = None
        wall = cpu = 0.0
        rss = 0
        while True:
            try:
                pid, wait_status, usage = os.wait4(-1, 0)
            except ChildProcessError:
                break
            if pid == client:
                wall = time.perf_counter() - start
                status = os.waitstatus_to_exitcode(wait_status)
            cpu += usage.ru_utime + usage.ru_stime
            rss = max(rss, usage.ru_maxrss)
    print(json.dumps({"status": status, "wall_ms": wall * 1000, "cpu_ms": cpu * 1000, "rss_kib": rss}))
    return 0


def stop_client(client, signum):
    try:
        os.killpg(client, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(128 + signum)


def parse_args():
    parser = argparse.ArgumentParser(description="Benchmark desiccant against dehydrated, lego, "
                                     "certbot and uacme on a local Pebble (run as root).")
    parser.add_argument("--desiccant", help="the desiccant binary (needed unless --render)")
    parser.add_argument("--render", metavar="FILE",
                        help="no measuring: BENCHMARKS.md again from the results a run saved "
                        "(every run saves them in target/bench-results.json)")
    parser.add_argument("--runs", type=int, help="runs per client and scenario (default 5; 3 with --wan)")
    parser.add_argument("--quick", action="store_true",
                        help="one run each, and no noop1000 (with --wan: batch1000, noop10000) "
                        "unless --scenarios names it")
    parser.add_argument("--wan", action="store_true",
                        help="the WAN bench instead: every client through tests/common/wan_relay.py "
                        "(round trips of 50 and 150 ms, Let's Encrypt's request limits), Pebble "
                        "validating after 0-2 s; --write then writes BENCHMARKS.md's WAN section")
    parser.add_argument("--clients", help="comma-separated subset of " + ",".join(CLIENT_NAMES))
    parser.add_argument("--scenarios", help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md instead of printing it")
    args = parser.parse_args()
    if not args.desiccant and not args.render:
        parser.error("--desiccant is needed")

    def subset(text, known, what):
        if not text:
            return list(known)
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        for item in chosen:
            if item not in known:
                parser.error(f"unknown {what} {item!r}; known: {', '.join(known)}")
        return [item for item in known if item in chosen]

    args.client_list = subset(args.clients, CLIENT_NAMES, "client")
    args.scenario_list = subset(args.scenarios, WAN_SCENARIOS if args.wan else SCENARIOS, "scenario")
    if args.runs is None:
        args.runs = 3 if args.wan else 5
    if args.quick:
        args.runs = 1
        if not args.scenarios:
            for big in ("batch1000", "noop10000") if args.wan else ("noop1000",):
                args.scenario_list.remove(big)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def command_line():
    """The run.sh command that produced this result, for the header."""
    words = []
    skip = False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--desiccant":
            skip = True
        elif not arg.startswith("--desiccant="):
            words.append(arg)
    return shlex.join(["sudo", "tests/bench/run.sh"] + words)


def render(saved):
    """BENCHMARKS.md from the results a run saved."""
    table = {(sc, name): summary for sc, name, summary in saved["table"]}
    return markdown(table, saved["clients"], saved["scenarios"], saved["info"],
                    saved["command_line"], saved["validity"])


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--measure" and sys.argv[3] == "--":
        return measure_main(sys.argv[2], sys.argv[4:])
    args = parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        wan = "plan" in saved
        text = render_wan(saved) if wan else render(saved)
        if args.write:
            write_benchmarks(text, wan)
        else:
            print(text)
        return 0
    if os.geteuid() != 0:
        print("bench.py must run as root: it mounts a CA bundle in a private mount namespace",
              file=sys.stderr)
        return 1
    if not os.environ.get(NAMESPACE_MARK):
        # Once more inside a new mount namespace; the mark is the namespace we came from.
        os.environ[NAMESPACE_MARK] = os.readlink("/proc/self/ns/mnt")
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private",
                              sys.executable, os.path.abspath(__file__)] + sys.argv[1:])

    desiccant = os.path.abspath(args.desiccant)
    # SIGINT (also when inherited as ignored), SIGTERM and SIGHUP stop the benchmark with a
    # KeyboardInterrupt: through the finally below, which stops every process it started.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)

    if args.wan:
        try:
            saved = run_wan(args, desiccant)
        except BenchError as error:
            print(f"benchmark failed: {error}", file=sys.stderr)
            if error.output:
                print("---- output ----", file=sys.stderr)
                print(error.output.rstrip(), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        progress("results saved in " + WAN_RESULTS)
        text = render_wan(saved)
        if args.write:
            write_benchmarks(text, True)
        else:
            print(text)
        return 0

    lab = Lab()
    try:
        lab.start()
        everyone = {
            "desiccant": Desiccant(lab, desiccant),
            "dehydrated": Dehydrated(lab),
            "lego": Lego(lab),
            "certbot": Certbot(lab),
            "uacme": Uacme(lab),
        }
        clients = [everyone[name] for name in args.client_list]
        info = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "versions": versions(desiccant),
            # What the measuring step itself costs: `true` measured the same way.
            "baseline": summarize([lab.measure(Command(["true"]), "baseline") for _ in range(5)]),
        }
        if "desiccant" in args.client_list:
            info["itself"] = everyone["desiccant"].itself(lab)
        table = {}
        for scenario in args.scenario_list:
            for client in clients:
                results = bench_one(lab, client, scenario, args.runs)
                table[(scenario, client.name)] = summarize(results) if results else None
        validity = lab.pebble_setting("Using certificate validity period of ")
        if validity.endswith(" seconds") and validity.split()[0].isdigit():
            validity = f"{int(validity.split()[0]) // 86400} days"
        info["traces"] = everyone["desiccant"].traces
        info["hook_floor"] = everyone["desiccant"].hook_floor
        saved = {"clients": args.client_list, "scenarios": args.scenario_list, "info": info,
                 "command_line": command_line(), "validity": validity,
                 "table": [[sc, name, summary] for (sc, name), summary in table.items()]}
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(saved, f, indent=1)
        progress("results saved in " + RESULTS)
        text = render(saved)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        if error.output:
            print("---- output ----", file=sys.stderr)
            print(error.output.rstrip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        lab.stop()

    if args.write:
        write_benchmarks(text, False)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
