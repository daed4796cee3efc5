#!/usr/bin/env python3
"""Prints a TCP port that a test server can listen on (on every address) right now.

Not from the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range): a port chosen
there (bind to port 0) is also the local port the kernel gives outgoing connections, so between
this script and the server's bind a connection of a concurrent test can take it and the server
fails with "address already in use" (a kubelet did, in CI). Below the range (and below 30000,
where Kubernetes NodePorts start) only servers that ask for a port by number use it. The port is
checked free on 0.0.0.0 and 127.0.0.1 (no SO_REUSEADDR, so a connection using it counts) and
picked at random, so that concurrent tests seldom pick the same one. Falls back to an ephemeral
port if nothing below the range is free after many tries.
"""
import random
import socket


def bindable(port):
    for host in ("0.0.0.0", "127.0.0.1"):
        s = socket.socket()
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def main():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    end = min(low, 30000)
    first = 20000 if end > 21000 else 1024
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(first, max(first + 1, end))
        if bindable(port):
            print(port)
            return
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])


if __name__ == "__main__":
    main()
