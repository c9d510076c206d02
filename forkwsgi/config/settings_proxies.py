"""TLS, and what a proxy in front is trusted to say (forwarded headers, PROXY protocol)."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.tls import cert_reqs
from forkwsgi.config.validators import (optional_string, proxy_protocol_mode, string_dict, string_list,
                                        upper_list)

ROWS = [
    Setting("certfile", optional_string, None, ("--certfile",),
            "Serve TLS with this certificate (PEM, with its chain). Off when unset.", "FILE"),
    Setting("keyfile", optional_string, None, ("--keyfile",),
            "The certificate's private key (PEM); defaults to certfile.", "FILE"),
    Setting("ca_certs", optional_string, None, ("--ca-certs",),
            "CA certificates (PEM) that client certificates are verified against.", "FILE"),
    Setting("cert_reqs", cert_reqs, 0, ("--cert-reqs",),
            "Client certificates: none, optional or required (mutual TLS).", "MODE"),
    Setting("forwarded_allow_ips", string_list, ["127.0.0.1", "::1"], ("--forwarded-allow-ips",),
            "Peers (IPs or networks, '*' for any) trusted to set X-Forwarded-For, the secure_scheme_headers "
            "and the forwarder_headers.", "IPS"),
    Setting("secure_scheme_headers", string_dict,
            {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}, (),
            "Headers a trusted proxy sets to say the client used https, with the value that means it "
            "(another value means http; headers that disagree change nothing)."),
    Setting("forwarder_headers", upper_list, ["SCRIPT_NAME", "PATH_INFO"], ("--forwarder-headers",),
            "Header names with '_' a trusted proxy may set (dropped otherwise): SCRIPT_NAME sets the "
            "app's mount point, others become HTTP_<NAME>.", "NAMES"),
    Setting("proxy_protocol", proxy_protocol_mode, None, ("--proxy-protocol",),
            "Expect a PROXY protocol header at the start of each connection from proxy_allow_ips: "
            "v1 (text), v2 (binary), auto (either; also 'true'), or off.", "MODE"),
    Setting("proxy_allow_ips", string_list, ["127.0.0.1", "::1"], ("--proxy-allow-from",),
            "Peers allowed to send a PROXY protocol line.", "IPS"),
    Setting("health_path", optional_string, None, ("--health-path",),
            "A path (e.g. /healthz) the worker answers itself, without the app: 200, or 503 once stopping "
            "(readiness). Off when unset.", "PATH", gunicorn=None),
    Setting("ciphers", optional_string, None, ("--ciphers",),
            "TLS 1.2 ciphers, in OpenSSL's cipher list syntax; default: Python's secure list.", "CIPHERS"),
]
