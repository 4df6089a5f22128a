"""`moto_server` with the orphan guard: same arguments (`-H 127.0.0.1 -p PORT`), but it exits when
the process that started it is gone."""

import sys

import orphan_guard

if __name__ == "__main__":
    orphan_guard.install()  # before the slow import of moto
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
