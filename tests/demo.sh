#!/usr/bin/env bash
# The main job on this machine, end to end: builds the release binary, starts a local Pebble
# (Let's Encrypt's test CA) with its DNS server and a web server for the webroot, writes a
# config and domains.txt into a temporary BASEDIR, runs `desiccant --cron --accept-terms`,
# shows what was written and the certificates' names and dates, runs it again (nothing to do),
# and stops everything. Needs pebble, openssl and python3 (tests/run.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
bin="$PWD/target/release/desiccant"

work=$(mktemp -d /tmp/desiccant-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# A TLS certificate for Pebble, from a throw-away CA that desiccant is told to trust.
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=demo CA" -addext basicConstraints=critical,CA:TRUE \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout key.pem -out tls.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile san.ext -out cert.pem 2>/dev/null

acme=$(free_port); mgmt=$(free_port); http=$(free_port); dns=$(free_port); dnsmgmt=$(free_port)
cat > pebble.json <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme", "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$work/cert.pem", "privateKey": "$work/key.pem",
  "httpPort": $http, "tlsPort": 5001, "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}
JSON

# Every name resolves to 127.0.0.1, where python serves the webroot on Pebble's httpPort.
pebble-challtestsrv -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$dnsmgmt" -defaultIPv4 127.0.0.1 -defaultIPv6 "" >dns.log 2>&1 &
pids+=($!)
mkdir -p www/.well-known/acme-challenge
python3 -m http.server --bind 127.0.0.1 --directory www "$http" >www.log 2>&1 &
pids+=($!)
PEBBLE_VA_NOSLEEP=1 pebble -config pebble.json -dnsserver "127.0.0.1:$dns" >pebble.log 2>&1 &
pids+=($!)
wait_port "$dnsmgmt"; wait_port "$http"; wait_port "$acme"

base="$work/basedir"
mkdir -p "$base"
cat > "$base/config" <<CONFIG
CA="https://127.0.0.1:$acme/dir"
CA_BUNDLE="$work/ca.pem"
WELLKNOWN="$work/www/.well-known/acme-challenge"
CONTACT_EMAIL=admin@example.org
CONFIG
cat > "$base/domains.txt" <<DOMAINS
example.org www.example.org
mail.example.net imap.example.net smtp.example.net > mail
DOMAINS

echo "== config"; cat "$base/config"
echo "== domains.txt"; cat "$base/domains.txt"
echo "== desiccant --config $base/config --cron --accept-terms"
"$bin" --config "$base/config" --cron --accept-terms ${DEMO_FLAGS:-}
echo "== what was written"
(cd "$base" && find . -path ./accounts -prune -o -print | sort | while read -r f; do
    if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f"; fi
done)
(cd "$base" && find accounts -exec stat -c '%A %n' {} \;)
# Pebble's root, to check the chains against.
python3 - "$work/ca.pem" "https://127.0.0.1:$mgmt/roots/0" > "$work/root.pem" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
print(urllib.request.urlopen(sys.argv[2], context=ctx).read().decode(), end="")
PY
for cert in "$base"/certs/*/cert.pem; do
    echo "== ${cert#"$base"/}"
    openssl x509 -in "$cert" -noout -subject -issuer -dates -ext subjectAltName
    stat -c '%A %n' "$(dirname "$cert")/privkey.pem" "$(dirname "$cert")/$(readlink "$(dirname "$cert")/privkey.pem")"
    openssl verify -CAfile "$work/root.pem" -untrusted "$(dirname "$cert")/chain.pem" "$cert"
done
echo "== a second run: nothing is due, so it prints nothing and sends nothing"
start=$(date +%s%N)
status=0
"$bin" --config "$base/config" --cron || status=$?
echo "exit status $status after $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ "$status" -eq 0 ]
