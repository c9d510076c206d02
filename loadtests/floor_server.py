"""The floor of the metrics-scrape benchmark: the least a process can do to answer a scrape.

A single-threaded select() loop on one port that answers every request head
with the same body of --size bytes, keeping connections open. Pinned to the
server cores beside forkwsgi, it shows what being woken and answering 100
times a second costs the worker there, whatever the answering process does.
"""
import argparse
import select
import socket


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=4600)
    args = parser.parse_args()
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (args.size, b"x" * args.size)
    listener = socket.create_server(("127.0.0.1", args.port))
    clients = []
    while True:
        ready, _, _ = select.select([listener] + clients, [], [])
        for sock in ready:
            if sock is listener:
                clients.append(listener.accept()[0])
                continue
            try:
                if sock.recv(65536):
                    sock.sendall(answer)
                    continue
            except OSError:  # a scraper that left with an answer unread: reset
                pass
            clients.remove(sock)
            sock.close()


if __name__ == "__main__":
    main()
