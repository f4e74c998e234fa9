"""A test cluster on one machine: a second "machine" is a process tree in namespaces of its own (as root): its own
host name (UTS), its own local disk (a mount namespace with tmpfs over the folders it must not share with the
first machine) and, for Ray, its own network (a network namespace joined to this one by a veth pair, with test
addresses of its own), so Ray sees two nodes at two addresses and PostgreSQL is reached as over a network."""
from __future__ import annotations

import os
import random
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def can_make_machines() -> str:
    """Why this machine cannot host a test cluster ('' when it can): root, unshare and ip are needed."""
    if os.geteuid() != 0:
        return "needs root (namespaces)"
    for tool in ("unshare", "ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return ""


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def stop_processes_mentioning(text: str) -> None:
    """Kill the processes whose command line holds ``text``, and their descendants, and wait for them to go. At
    once: asked to terminate, Ray's head processes (GCS, raylet, monitor, runtime-env agent) wait on each other and
    are still there 10 s later."""
    import psutil

    ours = set()
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if text in " ".join(proc.info["cmdline"] or []):
                ours |= {proc, *proc.children(recursive=True)}  # agents and workers rename themselves
        except psutil.Error:
            pass
    for proc in ours:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(ours), timeout=10)


class Machine:
    """A process tree in namespaces of its own: ``hostname``, tmpfs over each of ``private`` (its local disk),
    and with ``network`` its own network namespace at ``address`` (this machine at ``peer``)."""

    def __init__(self, hostname: str, private: list, network: bool = False):
        self.hostname, self.private = hostname, [str(p) for p in private]
        self.netns = self.link = None
        self.procs: list = []
        if network:
            tag = secrets.token_hex(3)
            self.netns, self.link = f"asymllic-{tag}", f"asy{tag}"
            net = random.randrange(16, 250)  # a /30 of the test range, unlikely to be in use
            self.peer, self.address = f"10.231.{net}.1", f"10.231.{net}.2"
            for cmd in (f"ip netns add {self.netns}", f"ip link add {self.link}a type veth peer name {self.link}b",
                        f"ip link set {self.link}b netns {self.netns}", f"ip addr add {self.peer}/30 dev {self.link}a",
                        f"ip link set {self.link}a up",
                        f"ip netns exec {self.netns} ip addr add {self.address}/30 dev {self.link}b",
                        f"ip netns exec {self.netns} ip link set {self.link}b up",
                        f"ip netns exec {self.netns} ip link set lo up"):
                subprocess.run(shlex.split(cmd), check=True, capture_output=True)

    def command(self, args: list) -> list:
        mounts = "".join(f"mkdir -p {shlex.quote(p)} && mount -t tmpfs tmpfs {shlex.quote(p)} && "
                         for p in self.private)
        inner = ["unshare", "--mount", "--uts", "--fork", "sh", "-c",
                 f"hostname {self.hostname} && {mounts}exec {' '.join(shlex.quote(str(a)) for a in args)}"]
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + inner

    def start(self, args: list, env: dict | None = None, **kw) -> subprocess.Popen:
        """``args`` run on this machine, in the background (a session of its own: ``kill`` ends all of it)."""
        proc = subprocess.Popen(self.command(args), env=env, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def run(self, args: list, env: dict | None = None, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        """``args`` run to its end on this machine: in the namespaces of the machine's first process (its disk, as
        that process sees it), or in new ones when it runs nothing yet."""
        import psutil

        inside = [c for p in self.procs if p.poll() is None for c in psutil.Process(p.pid).children()][:1]
        cmd = ["nsenter", "-t", str(inside[0].pid), "-m", "-u", "-n", *map(str, args)] if inside else self.command(args)
        return subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True, **kw)

    def running(self, text: str) -> bool:
        """Some process of this machine (its host name's namespace) has ``text`` in its command line (its title)."""
        import psutil

        inside = [c for p in self.procs if p.poll() is None for c in psutil.Process(p.pid).children()][:1]
        if not inside:
            return False
        uts = os.readlink(f"/proc/{inside[0].pid}/ns/uts")
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if text in " ".join(proc.info["cmdline"] or []) and os.readlink(f"/proc/{proc.pid}/ns/uts") == uts:
                    return True
            except (OSError, psutil.Error):
                pass
        return False

    def kill(self) -> None:
        """The machine is lost: every process it runs is killed at once."""
        import psutil

        for proc in self.procs:
            if proc.poll() is None:
                tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
                for pid in tree:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                proc.wait()

    def close(self) -> None:
        self.kill()
        if self.netns:
            subprocess.run(["ip", "link", "del", f"{self.link}a"], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


class RayCluster:
    """A Ray head on this machine and a worker node on ``Machine`` B (its own host name, temp disk and address);
    ``cpus`` each, ``gpus`` logical GPUs each. ``env``: the environment of every process of the cluster (``extra``
    on top of this process's) and what a driver needs to connect (auth token); ``node_b_env``: node B's on top
    (e.g. ``CUDA_VISIBLE_DEVICES``: the GPU ids Ray gives its trials)."""

    def __init__(self, cpus: int = 1, gpus: int = 0, node_b_private: list = (), extra: dict | None = None,
                 node_b_env: dict | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live under it
        (self.tmp / "token").write_text(secrets.token_hex(32))
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.tmp / "token"),
                    "OMP_NUM_THREADS": "1", **(extra or {})}
        self.b = Machine("node-b", [self.tmp / "session", *node_b_private], network=True)
        self.address = f"{self.b.peer}:{free_ports(1)[0]}"
        ray = [sys.executable, "-m", "ray.scripts.scripts", "start"]
        common = ["--num-cpus", str(cpus), "--num-gpus", str(gpus), "--disable-usage-stats",
                  "--object-store-memory", str(150 * 2**20)]
        head = subprocess.run([*ray, "--head", "--node-ip-address", self.b.peer, "--port", self.address.split(":")[1],
                               "--temp-dir", str(self.tmp / "session"), "--include-dashboard", "false", *common],
                              env=self.env, capture_output=True, text=True, timeout=120)
        if head.returncode != 0:
            self.close()
            raise RuntimeError(f"ray head did not start: {head.stderr[-2000:]}")
        self.b.start([*ray, "--address", self.address, "--node-ip-address", self.b.address, "--block", *common],
                     env={**self.env, **(node_b_env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def connect(self, nodes: int = 2, timeout: float = 120) -> None:
        """This process becomes a driver of the cluster once ``nodes`` nodes are alive (a Ray it ran before is shut
        down first); its environment must hold ``env``'s ``RAY_AUTH_*``. ``ray.shutdown()`` and
        ``reload_ray_auth()`` (once the environment is as it was) end it."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        reload_ray_auth()
        ray.init(address=self.address, log_to_driver=False)
        deadline = time.monotonic() + timeout
        while sum(bool(n["Alive"]) for n in ray.nodes()) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster did not reach {nodes} nodes in {timeout:.0f} s")
            time.sleep(0.2)

    def close(self) -> None:
        self.b.close()
        stop_processes_mentioning(str(self.tmp))
        shutil.rmtree(self.tmp, ignore_errors=True)


def reload_ray_auth() -> None:
    """This process's Ray reads ``RAY_AUTH_MODE`` and its token from the environment again: it keeps what it read
    first (in its cached config), e.g. no token before a test set one. As Ray's own ``_enable_token_auth`` does."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def skip_without_machines():
    why = can_make_machines()
    if why:
        pytest.skip(f"no test cluster on this machine: {why}")
