"""The servers of the moto test bed do not outlive a test process that is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# A stand-in for the test process: starts a server, prints its PID, then waits to be killed.
LAUNCHER = """
import os, subprocess, sys, time
env = dict(os.environ, NATGW_MOTO_PARENT_PID=str(os.getpid()))
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
print(p.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says so where there is one.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class OrphanGuardTest(unittest.TestCase):
    def check(self, server: list[str], settle: float) -> None:
        """Starts `server` under a launcher, lets it run `settle` seconds (0: the launcher dies
        before the server has even installed its guard), kills the launcher outright and expects
        the server to exit."""
        launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, *server], stdout=subprocess.PIPE, text=True)
        with launcher.stdout:
            pid = int(launcher.stdout.readline())
        if settle:
            time.sleep(settle)
            self.assertTrue(alive(pid), "the server did not start")
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.time() + 30
        while alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        self.assertFalse(alive(pid), f"server {pid} outlived its parent")

    def test_a_guard_installed_after_the_parent_died_exits_too(self) -> None:
        code = f"import sys, time; sys.path.insert(0, {HERE!r}); time.sleep(2); import orphan_guard; "
        code += "orphan_guard.install(); time.sleep(600)"
        self.check([sys.executable, "-c", code], settle=0)

    def test_moto_exits_with_its_parent(self) -> None:
        moto = [sys.executable, os.path.join(HERE, "serve_moto.py"), "-H", "127.0.0.1", "-p", "0"]
        self.check(moto, settle=0)
        self.check(moto, settle=3)

    def test_proxy_exits_with_its_parent(self) -> None:
        proxy = os.path.join(HERE, "cbor_proxy.py")
        self.check([sys.executable, proxy, "--port", "0", "--moto", "http://127.0.0.1:9", "--exit-with-parent"], 3)


if __name__ == "__main__":
    unittest.main()
