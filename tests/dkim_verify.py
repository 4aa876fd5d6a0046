#!/usr/bin/env python3
"""Verifies the DKIM signature of the message on standard input with dkimpy,
an implementation independent of ambassador's (lettre's) signer.

The public key comes from a local file instead of DNS:

    dkim_verify.py RECORD_FILE QUERY_NAME < message.eml

RECORD_FILE holds the TXT record ("v=DKIM1; k=rsa; p=..."), served only for
QUERY_NAME ("selector._domainkey.domain."), so a signature naming another
selector or domain finds no key and fails.

Exit status: 0 verified, 1 not verified (the reason on stderr), 2 misuse.
"""
import logging
import sys

import dkim


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        record = f.read().strip()
    wanted = sys.argv[2].rstrip(".").lower()

    def dns(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return record if name.rstrip(".").lower() == wanted else None

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="dkimpy: %(message)s")
    message = sys.stdin.buffer.read()
    verified = dkim.verify(message, logger=logging.getLogger("dkim"), dnsfunc=dns)
    if not verified:
        print("DKIM signature NOT verified", file=sys.stderr)
        return 1
    print("DKIM signature verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
