#!/usr/bin/env bash
# The installed desiccant.service, hardening and all, run by a real systemd: does everything
# still work inside its sandbox? Called by tests/package.sh while the package is installed.
#
# A systemd manager is started as PID 1 of a new PID and mount namespace, so the machine's own
# services are not touched and nothing is needed from the machine's init. It gets /run, /tmp
# and /var/tmp of its own and sees /etc, /usr and /var read-only but for what the test writes:
# a systemd starting up on the machine's own files would, among other things, empty /tmp
# (systemd-tmpfiles) and start a journal in /var/log. Around it, on loopback: Pebble (an ACME test server, its TLS certificate made here),
# BIND named (the DNS server of example.test, taking RFC 2136 updates signed with TSIG) and
# nginx (serving /var/www/dehydrated for http-01, itself a unit of that systemd). Then, with
# /etc/desiccant as an admin would set it up, `systemctl start desiccant.service` must:
#   - issue web.example.test by http-01 through the webroot (/var/www/dehydrated),
#   - issue dns.example.test by dns-01 through desiccant's own RFC 2136 updates to named,
#   - run the hook's deploy_cert for both, whose `systemctl reload` of nginx works,
#   - exit 0, with keys 0600, and leave no challenge file behind.
# /etc/desiccant is put back as it was afterwards. Needs root, unshare and nsenter
# (util-linux), pebble, named (bind9), dig (bind9-dnsutils), nginx and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "unit sandbox test: $*" >&2
    if [ -n "${work:-}" ]; then
        for log in "$work"/*.log; do
            [ -s "$log" ] && { echo "---- $log" >&2; tail -n 40 "$log" >&2; }
        done
    fi
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root"
[ -x /usr/bin/desiccant ] && [ -f /lib/systemd/system/desiccant.service ] \
    || fail "the desiccant package is not installed"
for program in pebble named dig nginx openssl unshare nsenter python3; do
    command -v "$program" >/dev/null || fail "$program is missing"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    fail "$2 did not listen on port $1"
}

work=$(mktemp -d /var/lib/desiccant-unit-test.XXXXXX)
cp -a /etc/desiccant "$work/etc-desiccant"
made_webroot=""
[ -d /var/www/dehydrated ] || made_webroot=1
manager=""
cleanup() {
    [ -n "$manager" ] && kill -KILL "$manager" 2>/dev/null
    [ -n "${pebble_pid:-}" ] && kill "$pebble_pid" 2>/dev/null
    [ -n "${named_pid:-}" ] && kill "$named_pid" 2>/dev/null
    [ -n "$made_webroot" ] && rm -rf /var/www/dehydrated
    if [ -d "$work/etc-desiccant" ]; then
        rm -rf /etc/desiccant
        cp -a "$work/etc-desiccant" /etc/desiccant
    fi
    rm -rf "$work"
}
trap cleanup EXIT

acme_port=$(free_port) mgmt_port=$(free_port) http_port=$(free_port) dns_port=$(free_port)

# Pebble's TLS certificate, from a CA of this test; desiccant trusts that CA only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=unit-test-ca \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$work/tls.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/tls.ext" -out "$work/tls.pem" 2>/dev/null

# named: example.test, every name 127.0.0.1, updates signed with the key desiccant has.
secret=$(head -c 32 /dev/urandom | base64)
printf 'key "acme-update" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$secret" > "$work/tsig.key"
cat > "$work/named.conf" <<EOF
options { directory "$work"; listen-on port $dns_port { 127.0.0.1; }; listen-on-v6 { none; };
  pid-file "$work/named.pid"; recursion no; dnssec-validation no; notify no; };
include "$work/tsig.key";
controls { };
zone "example.test" { type primary; file "$work/zone.db"; allow-update { key "acme-update"; }; };
EOF
cat > "$work/zone.db" <<'EOF'
$TTL 60
@ IN SOA ns.example.test. admin.example.test. 1 60 60 600 60
@ IN NS ns.example.test.
ns IN A 127.0.0.1
* IN A 127.0.0.1
EOF
named -g -c "$work/named.conf" > "$work/named.log" 2>&1 &
named_pid=$!
for _ in $(seq 200); do grep -q running "$work/named.log" && break; sleep 0.05; done
grep -q running "$work/named.log" || fail "named did not start"

cat > "$work/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$mgmt_port",
  "certificate": "$work/tls.pem", "privateKey": "$work/tls.key", "httpPort": $http_port,
  "tlsPort": $(free_port), "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$work/pebble.json" -dnsserver "127.0.0.1:$dns_port" > "$work/pebble.log" 2>&1 &
pebble_pid=$!
wait_port "$acme_port" pebble

# /etc/desiccant as an admin sets it up: the CA, its trust anchor, the hook, a dns-01
# certificate with its own config, and the account registered once by hand.
mkdir -p /var/www/dehydrated /etc/desiccant/certs/dns.example.test
install -m 0644 "$work/ca.pem" /etc/desiccant/ca.pem
install -m 0600 "$work/tsig.key" /etc/desiccant/tsig.key
cat > /etc/desiccant/config <<EOF
CA="https://127.0.0.1:$acme_port/dir"
CA_BUNDLE=/etc/desiccant/ca.pem
CONTACT_EMAIL=admin@example.org
HOOK=/etc/desiccant/hook.sh
DNS_UPDATE_SERVER=127.0.0.1:$dns_port
DNS_UPDATE_KEY_FILE=/etc/desiccant/tsig.key
DNS_CHECK_SERVERS=127.0.0.1:$dns_port
EOF
printf 'web.example.test\ndns.example.test\n' > /etc/desiccant/domains.txt
echo CHALLENGETYPE=dns-01 > /etc/desiccant/certs/dns.example.test/config
cat > /etc/desiccant/hook.sh <<'EOF'
#!/bin/sh
# deploy_cert: reload nginx through systemd, and say how that went.
if [ "$1" = deploy_cert ]; then
    systemctl reload unit-test-nginx.service
    echo "deploy_cert $2 $3 reload=$?" >> /etc/desiccant/hook.log
fi
exit 0
EOF
chmod 0755 /etc/desiccant/hook.sh
desiccant --register --accept-terms > "$work/register.log" 2>&1 || fail "--register failed"

# The systemd manager, in namespaces of its own. Its /run is new: the units of this test go
# there (nginx, and where desiccant's output goes); desiccant.service is the installed one.
cat > "$work/nginx.conf" <<EOF
pid $work/nginx.pid;
error_log $work/nginx.log notice;
events { }
http {
    access_log off;
    # Its temporary folders in the test's own, writable one: the default ones under
    # /var/lib/nginx are made at nginx's first start as root, which on a fresh machine has not
    # happened, and /var is read-only in the manager's namespace.
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
    fastcgi_temp_path $work/nginx-fastcgi;
    uwsgi_temp_path $work/nginx-uwsgi;
    scgi_temp_path $work/nginx-scgi;
    server {
        listen 127.0.0.1:$http_port;
        location /.well-known/acme-challenge/ { alias /var/www/dehydrated/; }
    }
}
EOF
# The manager's namespace sees the machine's files read-only, but for what this test writes
# (BASEDIR, the webroot, its own folder), with /run, /tmp and /var/tmp of its own: whatever
# a systemd starting up would do (clean /tmp, start a journal) stays in there.
cat > "$work/manager.sh" <<EOF
#!/bin/bash
set -e
mount --make-rprivate /
for dir in /etc /usr /var; do
    mount --bind \$dir \$dir
    mount -o remount,bind,ro \$dir
done
for dir in /etc/desiccant /var/www/dehydrated $work; do
    mount --bind \$dir \$dir
    mount -o remount,bind,rw \$dir
done
for dir in /run /tmp /var/tmp; do
    mount -t tmpfs -o mode=1777 tmpfs \$dir
done
chmod 0755 /run
mkdir -p /run/systemd/system/desiccant.service.d
cat > /run/systemd/system/unit-test.target <<'UNIT'
[Unit]
Description=What the unit sandbox test needs
DefaultDependencies=no
Wants=unit-test-nginx.service
UNIT
cat > /run/systemd/system/unit-test-nginx.service <<'UNIT'
[Unit]
Description=nginx serving the http-01 webroot
DefaultDependencies=no
[Service]
Type=forking
PIDFile=$work/nginx.pid
ExecStart=/usr/sbin/nginx -c $work/nginx.conf
ExecReload=/usr/sbin/nginx -c $work/nginx.conf -s reload
UNIT
cat > /run/systemd/system/desiccant.service.d/unit-test.conf <<'UNIT'
# Where this test reads what desiccant printed; the sandbox is the installed unit's.
[Service]
StandardOutput=append:$work/desiccant.log
StandardError=append:$work/desiccant.log
UNIT
exec env container=desiccant-unit-test /lib/systemd/systemd --system --unit=unit-test.target \\
    --log-target=console
EOF
chmod +x "$work/manager.sh"
unshare --pid --mount --uts --fork --mount-proc "$work/manager.sh" > "$work/systemd.log" 2>&1 &
launcher=$!
for _ in $(seq 200); do
    manager=$(pgrep -P "$launcher" -x systemd || true)
    [ -n "$manager" ] && break
    sleep 0.05
done
[ -n "$manager" ] || fail "systemd did not start in its namespace"
in_manager() { nsenter -t "$manager" -m -p "$@"; }
for _ in $(seq 200); do
    state=$(in_manager systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.05
done
in_manager systemctl is-active --quiet unit-test-nginx.service || fail "nginx did not start"
echo "systemd $(in_manager systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') runs as PID 1 of its namespace ($state)"

# The run: the installed unit, started as the timer would start it.
in_manager systemctl start desiccant.service || true
result=$(in_manager systemctl show desiccant.service -p Result --value)
status=$(in_manager systemctl show desiccant.service -p ExecMainStatus --value)
[ "$result" = success ] && [ "$status" = 0 ] \
    || fail "desiccant.service ended with Result=$result, exit status $status"
echo "desiccant.service: Result=$result, exit status $status"

for name in web.example.test dns.example.test; do
    dir=/etc/desiccant/certs/$name
    for file in cert.pem chain.pem fullchain.pem privkey.pem; do
        [ -s "$dir/$file" ] || fail "$dir/$file is missing"
    done
    [ "$(stat -L -c %a "$dir/privkey.pem")" = 600 ] || fail "$dir/privkey.pem is not 0600"
    openssl x509 -in "$dir/cert.pem" -noout -ext subjectAltName | grep -q "DNS:$name" \
        || fail "$dir/cert.pem is not for $name"
    grep -q "^deploy_cert $name $dir/privkey.pem reload=0$" /etc/desiccant/hook.log \
        || fail "no deploy_cert for $name that reloaded nginx: $(cat /etc/desiccant/hook.log)"
done
grep -q 'signal 1 (SIGHUP) received' "$work/nginx.log" || fail "nginx was never reloaded"
[ -z "$(ls -A /var/www/dehydrated)" ] || fail "challenge files left in /var/www/dehydrated"
[ -z "$(dig +short +norecurse -p "$dns_port" @127.0.0.1 TXT _acme-challenge.dns.example.test 2>/dev/null)" ] \
    || fail "the TXT record of dns.example.test was not removed"
echo "unit sandbox test: http-01 (webroot), dns-01 (RFC 2136 with TSIG) and a hook reloading nginx through systemctl all work in the hardened unit"
