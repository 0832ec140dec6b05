#!/usr/bin/env python3
"""Makes N API keys in Lagoon's format for a benchmark, quickly: the keys go to KEYS_FILE (one per line)
and their rows (HMAC-SHA256(pepper, key) digests) to COPY_FILE for `\\copy api_keys(user_id, prefix,
digest) FROM …`. Mirrors src/keys/api_key.cpp: "sk-lgn_" + 43 base62 random + 11 base62 tag (the first
64 bits of HMAC-SHA256(pepper, "lagoon key tag v1:" + the two)) + 6 base62 CRC-32 of all before it."""
import hashlib, hmac, secrets, sys, zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

def base62(value, width):
    out = []
    for _ in range(width):
        value, r = divmod(value, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))

def main():
    count, pepper, user_id, keys_file, copy_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    with open(keys_file, "w") as keys, open(copy_file, "w") as rows:
        for _ in range(count):
            body = "sk-lgn_" + base62(int.from_bytes(secrets.token_bytes(32), "big"), 43)
            tag = hmac.new(pepper.encode(), ("lagoon key tag v1:" + body).encode(), hashlib.sha256).digest()[:8]
            body += base62(int.from_bytes(tag, "big"), 11)
            key = body + base62(zlib.crc32(body.encode()), 6)
            digest = hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()
            keys.write(key + "\n")
            rows.write(f"{user_id}\t{key[:12]}\t\\\\x{digest}\n")

if __name__ == "__main__":
    main()
