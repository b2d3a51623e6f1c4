"""acme2certifier for the tests: its Django app on a loopback address, over TLS.

    a2c_server.py ADDRESS PORT CERT KEY

The environment names its config (ACME_SRV_CONFIGFILE) and its folder
(ACME2CERTIFIER_BASE_DIR, where the SQLite database is made). The database is set up first
(Django's migrations and acme2certifier's status fixture), then the app is served, one request
at a time, until the process is killed. The app sees https as the scheme, so that the URLs it
hands out are the ones the client reaches.
"""

import ssl
import sys
from wsgiref.simple_server import make_server

from acme2certifier.acme_srv.helpers.django_boot import configure_django_settings_module

address, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

configure_django_settings_module()
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)
call_command("loaddata", "status", verbosity=0)

from acme2certifier.django_project.wsgi import application as acme  # noqa: E402


def application(environ, start_response):
    environ["wsgi.url_scheme"] = "https"
    return acme(environ, start_response)


server = make_server(address, port, application)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
print(f"listening on {address}:{port}", flush=True)
server.serve_forever()
