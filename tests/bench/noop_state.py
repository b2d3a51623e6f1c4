#!/usr/bin/env python3
"""Makes a BASEDIR with N valid certificates and nothing due, in the layout desiccant and
dehydrated keep, for measuring the daily run (`desiccant --config DIR/config --cron`) at
hosting scale without a CA. Every certificate is a 90-day one for `n<i>.example`, issued ten
days ago by one fake CA with one P-256 key, as bench.py's noop scenarios make them (there with
openssl; here with python3-cryptography, which certbot brings, since 10,000 openssl runs take
minutes). state/ holds what a run that issued them would have recorded. The config names a CA
on 127.0.0.1 that nothing answers: a run with nothing due sends no request.

    python3 tests/bench/noop_state.py DIR [--count 10000]
    /usr/bin/time -v target/release/desiccant --config DIR/config --cron

tests/bench/noop_measure.sh does both for 100, 1000 and 10000 certificates and prints the
median wall time and peak RSS of several runs.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_URL = "https://127.0.0.1:14000/dir"


def write(path, data, mode):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="the BASEDIR to make (replaced when it exists)")
    parser.add_argument("--count", type=int, default=10000)
    args = parser.parse_args()

    base = os.path.abspath(args.dir)
    if os.path.exists(base):
        shutil.rmtree(base)
    os.makedirs(base)
    for sub in ("certs", "state", "accounts", "wellknown"):
        os.makedirs(os.path.join(base, sub), mode=0o755)
    os.chmod(os.path.join(base, "state"), 0o700)

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    issued = now - datetime.timedelta(days=10)
    ts = int(issued.timestamp())

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "desiccant bench fake CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name).public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(issued).not_valid_after(issued + datetime.timedelta(days=100))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(ski, critical=False)
          .sign(key, hashes.SHA256()))
    chain_pem = ca.public_bytes(serialization.Encoding.PEM)

    config = "\n".join([
        f'CA="{CA_URL}"',
        f'BASEDIR="{base}"',
        f'WELLKNOWN="{base}/wellknown"',
        "KEY_ALGO=prime256v1",
        "CONTACT_EMAIL=bench@example.org",
        "",
    ])
    write(os.path.join(base, "config"), config, 0o600)

    account = os.path.join(base, "accounts",
                           base64.urlsafe_b64encode((CA_URL + "\n").encode()).decode().rstrip("="))
    os.makedirs(account, mode=0o700)
    write(os.path.join(account, "account_key.pem"), key_pem, 0o600)
    write(os.path.join(account, "registration_info.json"), '{"status": "valid"}\n', 0o600)
    write(os.path.join(account, "account_id.json"),
          json.dumps({"url": "https://127.0.0.1:14000/my-account/1"}) + "\n", 0o600)
    write(os.path.join(base, "state", ".ca.json"),
          json.dumps({"directory": CA_URL, "renewal_info": False,
                      "checked": int(now.timestamp())}) + "\n", 0o600)

    names = [f"n{i}.example" for i in range(1, args.count + 1)]
    write(os.path.join(base, "domains.txt"), "".join(n + "\n" for n in names), 0o600)
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    for name in names:
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(issued).not_valid_after(issued + datetime.timedelta(days=90))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(eku, critical=False)
                .add_extension(aki, critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(key, hashes.SHA256()))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        csr_pem = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                                  critical=False)
                   .sign(key, hashes.SHA256())
                   .public_bytes(serialization.Encoding.PEM))
        d = os.path.join(base, "certs", name)
        os.makedirs(d, mode=0o755)
        for kind, ext, data, mode in (("privkey", "pem", key_pem, 0o600),
                                      ("cert", "csr", csr_pem, 0o644),
                                      ("cert", "pem", cert_pem, 0o644),
                                      ("chain", "pem", chain_pem, 0o644),
                                      ("fullchain", "pem", cert_pem + chain_pem, 0o644)):
            write(os.path.join(d, f"{kind}-{ts}.{ext}"), data, mode)
            os.symlink(f"{kind}-{ts}.{ext}", os.path.join(d, f"{kind}.{ext}"))
        state = {
            "preferred_chain": "",
            "profile": "",
            "ca": CA_URL,
            "cert_sha256": hashlib.sha256(cert_pem).hexdigest(),
            "last_attempt": {"at": ts, "outcome": "issued"},
            "last_success": ts,
        }
        write(os.path.join(base, "state", name + ".json"), json.dumps(state, indent=2) + "\n",
              0o600)
    print(f"{base}: {args.count} certificates", file=sys.stderr)


if __name__ == "__main__":
    main()
