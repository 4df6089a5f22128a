"""Makes a test server exit when the process that started it is gone.

`natgw_testkit::moto::Moto` kills its servers on drop, but a test process killed outright (SIGKILL,
a CI timeout) runs no destructor: without this guard moto and the proxy would outlive it. The guard
polls the parent PID; once the process is reparented, the parent has died and the server exits.
The spawner passes its PID in `NATGW_MOTO_PARENT_PID`, so a parent that dies before the guard is
installed (moto takes seconds to import on a busy machine) is noticed too.
"""

from __future__ import annotations

import os
import threading
import time


PARENT_ENV = "NATGW_MOTO_PARENT_PID"


def install(interval: float = 0.5) -> None:
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="orphan-guard", daemon=True).start()
