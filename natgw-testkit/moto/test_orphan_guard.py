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
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    def check(self, server: list[str]) -> None:
        launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, *server], stdout=subprocess.PIPE, text=True)
        pid = int(launcher.stdout.readline())
        time.sleep(1.0)
        self.assertTrue(alive(pid))
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.time() + 10
        while alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        self.assertFalse(alive(pid), f"server {pid} outlived its parent")

    def test_moto_exits_with_its_parent(self) -> None:
        self.check([sys.executable, os.path.join(HERE, "serve_moto.py"), "-H", "127.0.0.1", "-p", "0"])

    def test_proxy_exits_with_its_parent(self) -> None:
        proxy = os.path.join(HERE, "cbor_proxy.py")
        self.check([sys.executable, proxy, "--port", "0", "--moto", "http://127.0.0.1:9", "--exit-with-parent"])


if __name__ == "__main__":
    unittest.main()
