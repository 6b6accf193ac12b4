"""Build the web UI's asset from its source: tools/www/index.html -> device/www/index.html.gz
(gzip level 9, no name, mtime 0: the same bytes on every machine) and print its size against the
budget (docs/web.md). One file: the page, its style and its script (no CDN: a unit on its setup
access point has no internet).

    .venv/bin/python tools/gen_www.py           # check: exit 1 if device/www is out of date
    .venv/bin/python tools/gen_www.py --write   # rebuild device/www/index.html.gz
"""
import gzip
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tools", "www", "index.html")
OUT = os.path.join(ROOT, "device", "www", "index.html.gz")
BUDGET = 24 * 1024  # bytes of gzip for every asset together


def build():
    raw = open(SRC, "rb").read()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(raw)
    return raw, buf.getvalue()


def main(argv):
    raw, gz = build()
    print("web assets: index.html %d B, gzip %d B (budget %d B)" % (len(raw), len(gz), BUDGET))
    if len(gz) > BUDGET:
        print("over budget")
        return 1
    if "--write" in argv:
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "wb") as f:
            f.write(gz)
        return 0
    if not os.path.exists(OUT) or open(OUT, "rb").read() != gz:
        print("device/www/index.html.gz is out of date: run tools/gen_www.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
