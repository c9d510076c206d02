"""Sans-I/O HTTP/1.x: request parsing and response framing over plain bytes."""
