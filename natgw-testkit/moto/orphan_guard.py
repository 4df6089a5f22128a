"""Makes a test server exit when the process that started it is gone.

`natgw_testkit::moto::Moto` kills its servers on drop, but a test process killed outright (SIGKILL,
a CI timeout) runs no destructor: without this guard moto and the proxy would outlive it. The guard
polls the parent PID; once the process is reparented, the parent has died and the server exits.
"""

from __future__ import annotations

import os
import threading
import time


def install(interval: float = 0.5) -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="orphan-guard", daemon=True).start()
