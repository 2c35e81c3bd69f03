#!/usr/bin/env python3
"""Stands in for systemd where the tests need its protocol but no systemd runs.

What it does, as systemd does for a Type=notify service with a .socket unit and
FileDescriptorStoreMax=: holds a listening TCP socket for the whole run (socket activation),
starts the daemon with that socket at fd 3 and every descriptor in its file descriptor store at
4.., naming them in LISTEN_FDNAMES (LISTEN_FDS, LISTEN_PID set for the daemon's own pid),
listens on a notify socket (NOTIFY_SOCKET) for READY=1 and for FDSTORE=1 messages, whose
descriptors (SCM_RIGHTS) it keeps under their FDNAME=.

Usage: fake_systemd.py BINARY ARGS...; it prints `PORT <port>`, then `STORED <name>` for each
descriptor stored and `READY <n>` once the n-th process is ready. It reads commands on stdin:
`restart` (SIGTERM, wait for the exit, start again, as `systemctl restart`), `kill` (SIGKILL,
then start again, as Restart=on-failure after a crash) and `stop` (SIGTERM, exit).
Python does the SCM_RIGHTS work (socket.recv_fds), so the Rust tests need no unsafe code.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOCKET_NAME = "ferrocached.socket"
TIMEOUT = 20.0


def say(line):
    print(line, flush=True)


CHILDREN = []


def fail(message):
    sys.stderr.write(f"fake_systemd: {message}\n")
    # No daemon outlives its manager.
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
            child.wait()
    sys.exit(1)


class Manager:
    def __init__(self, binary, args):
        self.binary = binary
        self.args = args
        self.work = tempfile.mkdtemp(prefix="fake-systemd-")
        self.notify_path = os.path.join(self.work, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.store = {}
        self.child = None
        self.started = 0

    def start(self):
        passed = [(self.listener.fileno(), SOCKET_NAME)]
        passed += [(fd, name) for name, fd in self.store.items()]
        # Copies far above 3.. first, so that placing one never overwrites another's source.
        high = []
        for index, (fd, _) in enumerate(passed):
            os.dup2(fd, 200 + index, inheritable=False)
            high.append(200 + index)

        def place():
            for index, fd in enumerate(high):
                os.dup2(fd, 3 + index)  # inheritable: the daemon gets it

        env = dict(os.environ)
        env.update(
            NOTIFY_SOCKET=self.notify_path,
            LISTEN_FDS=str(len(passed)),
            LISTEN_FDNAMES=":".join(name for _, name in passed),
        )
        # LISTEN_PID must be the daemon's pid: the shell sets it and execs in place.
        self.child = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', self.binary, *self.args],
            env=env,
            preexec_fn=place,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        CHILDREN.append(self.child)
        for fd in high:
            os.close(fd)
        self.wait_for("READY=1")
        self.started += 1
        say(f"READY {self.started}")

    def wait_for(self, wanted):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.notify, 4096, 16)
            except socket.timeout:
                if self.child.poll() is not None:
                    fail(f"the daemon exited ({self.child.returncode}) before {wanted}")
                if time.monotonic() > deadline:
                    fail(f"no {wanted} within {TIMEOUT} s")
                continue
            lines = message.decode(errors="replace").splitlines()
            if "FDSTORE=1" in lines:
                name = next((l[len("FDNAME="):] for l in lines if l.startswith("FDNAME=")), "stored")
                for fd in fds:
                    if name in self.store:
                        os.close(self.store[name])
                    self.store[name] = fd
                say(f"STORED {name}")
            else:
                for fd in fds:
                    os.close(fd)
            if wanted in lines:
                return

    def stop(self, sig):
        self.child.send_signal(sig)
        try:
            self.child.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.child.kill()
            fail(f"the daemon ignored signal {sig}")
        # Drain what it said on the way out (STOPPING=1, a late FDSTORE=1).
        try:
            while True:
                message, fds, _, _ = socket.recv_fds(self.notify, 4096, 16)
                for fd in fds:
                    os.close(fd)
        except (socket.timeout, BlockingIOError):
            pass
        return self.child.returncode


def main():
    if len(sys.argv) < 2:
        fail("usage: fake_systemd.py BINARY ARGS...")
    manager = Manager(sys.argv[1], sys.argv[2:])
    say(f"PORT {manager.listener.getsockname()[1]}")
    manager.start()
    for command in sys.stdin:
        command = command.strip()
        if not command:
            continue
        if command == "restart":
            code = manager.stop(signal.SIGTERM)
            if code != 0:
                fail(f"the daemon exited {code} on SIGTERM")
            manager.start()
        elif command == "kill":
            manager.stop(signal.SIGKILL)
            manager.start()
        elif command == "stop":
            code = manager.stop(signal.SIGTERM)
            say(f"EXITED {code}")
            return
        else:
            fail(f"unknown command {command!r}")
    manager.stop(signal.SIGTERM)


if __name__ == "__main__":
    main()
