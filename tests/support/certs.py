"""Certificates the TLS tests make with the openssl command: a CA, what it signed, and a rogue one.

Made once a session (the certs fixture in tests/conftest.py): RSA key generation is the slow part.
"""
import subprocess


def openssl(*args, cwd):
    """Run the openssl command in ``cwd``; its output is kept out of the test's."""
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def sign_certificate(directory, name, ca, serial):
    """A key and a certificate for ``name`` (localhost, 127.0.0.1) signed by the test CA."""
    ext = directory / ("%s.ext" % name)
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s.key" % name, "-out", "%s.csr" % name,
            "-subj", "/CN=%s" % name, cwd=directory)
    openssl("x509", "-req", "-in", "%s.csr" % name, "-CA", "%s.pem" % ca, "-CAkey", "%s.key" % ca,
            "-set_serial", str(serial), "-days", "2", "-out", "%s.pem" % name, "-extfile", str(ext), cwd=directory)


def make_certificates(directory):
    """A test CA; server, server2 and client certificates it signed; a rogue self-signed one."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=forkwsgi test CA", cwd=directory)
    sign_certificate(directory, "server", "ca", 1001)
    sign_certificate(directory, "server2", "ca", 2002)
    sign_certificate(directory, "client", "ca", 3003)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem",
            "-days", "2", "-subj", "/CN=rogue", cwd=directory)  # signed by nobody the server trusts
    return directory
