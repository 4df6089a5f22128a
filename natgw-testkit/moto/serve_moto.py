"""`moto_server` with the orphan guard: same arguments (`-H 127.0.0.1 -p PORT`), but it exits when
the process that started it is gone."""

import sys

import orphan_guard
from moto.server import main

if __name__ == "__main__":
    orphan_guard.install()
    sys.exit(main(sys.argv[1:]))
