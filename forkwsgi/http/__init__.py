"""Sans-I/O HTTP/1.1: request parsing and response framing over plain bytes.

Owns the request reader (parser.py finds the head's lines, head.py judges what they say,
fields.py checks field lines, body.py frames bodies), the PROXY protocol header (proxy.py),
response framing (response.py), the HTTP errors (errors.py) and the bounded memories of text
already found valid (known.py). Takes bytes, returns requests and bytes: no socket, no clock
beyond the Date header.

Imports nothing else of forkwsgi, so that every framing rule is tested with plain bytes.
"""
