"""Simulator fleet at scale: N phones in one process bootstrap against a mini ACS in another process.

Run by hand from the repository root (not part of the test suite):

    .venv/bin/python bench/fleet.py --phones 1000 --ramp 10       # quick
    .venv/bin/python bench/fleet.py --phones 20000 --ramp 240     # the issue's 20,000 phones in one process

The ACS is ``wp820_sim.mini_acs.MiniAcs`` (Digest on every request, one cookie per session, no RPCs beyond the
Inform) in a child process started by this script (``--serve-acs``), pinned to CPU 0; the fleet runs in this process
(``wp820_sim.fleet.Fleet``, the code behind ``wp820-sim run``), pinned to CPU 1 when there are two. The mini ACS
rather than the real one: the question is what the simulator costs, so the server should cost as little as possible.

Phases, each bounded by ``--time-limit`` seconds:

1. boot: N factory-fresh phones (state files in a temporary directory unless ``--state-dir``), their boots spread
   evenly over ``--ramp`` seconds, each bootstrapping (``0 BOOTSTRAP``, ``1 BOOT``) with the real TR-069 retry
   windows. Reports sessions ok / failed / retries / 503s, how many phones completed a session, wall time from start
   to the last session, the most sessions in flight at once and the most file descriptors in use (sampled each second),
   and CPU per session of this process and of the ACS (user + system time over the phase / sessions attempted;
   building the phones before the first boot is reported apart);
2. idle: once every state file is written, RSS (``VmRSS``) and open file descriptors of this process, and the RSS it
   grew by since before the fleet was built (the interpreter, Twisted and the data model were loaded by then),
   divided by N;
3. connection requests: ``--crs`` phones spread over the fleet (default 100) are sent a Digest-authenticated
   connection request from 127.0.0.1, at most 20 at a time; each must be answered 200 and be followed by a
   ``6 CONNECTION REQUEST`` session. Then one connection to an address on the port where no phone lives must be
   reset unread (``cr_refused``). Reports the listening sockets on the connection-request port;
4. stop: time to power every phone off and write its state.

The exit status is 1 when a phone did not bootstrap or a connection request failed. No timing is asserted. Results:
docs/performance.md ("Simulator fleet").
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, task, tcp  # noqa: E402

from wp820_sim.agent import AgentState, HttpClient, SessionError, TlsPolicy  # noqa: E402
from wp820_sim.fleet import Fleet, FleetConfig, identity  # noqa: E402
from wp820_sim.mini_acs import MiniAcs  # noqa: E402
from wp820_sim.phone import Credentials  # noqa: E402

ACS_USER, ACS_PASSWORD = "bench", "benchpass1"
CR_USER, CR_PASSWORD = "crbench", "crbench1"
CR_BATCH = 20
MIB = 1024 * 1024


# -- the ACS child ---------------------------------------------------------------------------------------------------


def serve_acs() -> None:
    """The child: a MiniAcs on 127.0.0.1, its port printed on stdout; runs until SIGTERM."""
    from twisted.internet import reactor

    _pin(0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    acs = MiniAcs(credentials={ACS_USER: ACS_PASSWORD})
    port = reactor.listenTCP(0, acs.site(), backlog=1024, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()


def start_acs() -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-acs"], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    line = child.stdout.readline() if child.stdout is not None else ""
    if not line.strip().isdigit():
        child.kill()
        raise SystemExit(f"the ACS child did not start (it printed {line!r})")
    return child, int(line)


# -- measurements ----------------------------------------------------------------------------------------------------


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of this process (all threads) or of another one (from /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # the directory listing's own descriptor


class Peaks:
    """Samples the fleet each second: most sessions in flight at once, most descriptors open."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self.sessions = 0
        self.fds = 0
        self._loop = task.LoopingCall(self.sample)

    def start(self) -> None:
        self._loop.start(1.0)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def sample(self) -> None:
        in_session = sum(1 for serial in self._fleet.serials if self._fleet.agent(serial).state is AgentState.SESSION)
        self.sessions = max(self.sessions, in_session)
        self.fds = max(self.fds, open_fds())


async def connection_request(reactor: Any, url: str) -> int:
    client = HttpClient(
        reactor,
        bind_ip="127.0.0.1",
        username=CR_USER,
        password=CR_PASSWORD,
        tls_policy=TlsPolicy(),
        timeout=10.0,
        max_body=4096,
    )
    try:
        return (await client.request(b"GET", url, None, {})).status
    finally:
        await client.close()


def within(d: defer.Deferred[Any], reactor: Any, seconds: float) -> defer.Deferred[Any]:
    return d.addTimeout(seconds, reactor)


# -- the phases ------------------------------------------------------------------------------------------------------


async def boot(reactor: Any, fleet: Fleet, acs_pid: int, args: argparse.Namespace, failures: list[str]) -> int:
    """Start the fleet and wait for every phone's first session; returns the sessions that succeeded."""
    n = args.phones
    cpu0 = cpu_seconds()
    await fleet.start()
    built = cpu_seconds()
    print(f"build: {n} phones created (state, agent, listener entry) in {built - cpu0:.1f} s CPU")
    peaks = Peaks(fleet)
    acs_cpu0, t0 = cpu_seconds(acs_pid), time.monotonic()
    peaks.start()
    try:
        await within(fleet.wait_sessions(n), reactor, args.ramp + args.time_limit)
    except defer.TimeoutError:
        failures.append("not every phone completed a session in time")
    wall = time.monotonic() - t0
    cpu, acs_cpu = cpu_seconds() - built, cpu_seconds(acs_pid) - acs_cpu0
    peaks.stop()
    counters = fleet.counters
    ok, failed = counters.get("sessions_ok", 0), counters.get("sessions_failed", 0)
    bootstrapped = sum(1 for row in fleet.summary() if row["sessions_ok"] > 0)
    if bootstrapped < n:
        failures.append(f"{n - bootstrapped} phones never completed a session")
    attempted = max(1, ok + failed)
    print(
        f"boot: {bootstrapped}/{n} phones bootstrapped; sessions ok {ok}, failed {failed}, retries "
        f"{counters.get('retries', 0)}, 503 {counters.get('http_503', 0)}; wall {wall:.1f} s from the first boot "
        f"({ok / wall:.0f} sessions/s); at most {peaks.sessions} sessions at once and {peaks.fds} open files"
    )
    print(
        f"      CPU per session: fleet {cpu / attempted * 1e3:.2f} ms, ACS {acs_cpu / attempted * 1e3:.2f} ms "
        f"(fleet {cpu:.1f} s, ACS {acs_cpu:.1f} s in all)"
    )
    return ok


async def idle(reactor: Any, fleet: Fleet, cr_port: int, rss_before: int) -> None:
    await fleet.states_written()
    await task.deferLater(reactor, 1.0, lambda: None)  # the last sessions' sockets finish closing
    gc.collect()
    rss, fds = rss_bytes(), open_fds()
    listening = [p for p in reactor.getReaders() if isinstance(p, tcp.Port) and p.getHost().port == cr_port]
    print(
        f"idle: RSS {rss / MIB:.1f} MiB ({(rss - rss_before) / len(fleet.serials) / 1024:.1f} KiB per phone over the "
        f"{rss_before / MIB:.1f} MiB before the fleet), {fds} open files, {len(listening)} socket(s) listening on "
        f"port {cr_port}"
    )


async def connection_requests(
    reactor: Any, fleet: Fleet, cr_port: int, sessions_before: int, args: argparse.Namespace, failures: list[str]
) -> None:
    n = args.phones
    count = min(args.crs, n)
    chosen = [identity(round(i * (n - 1) / max(1, count - 1))) for i in range(count)]
    statuses: list[str] = []
    t0 = time.monotonic()
    for start in range(0, count, CR_BATCH):
        results = await defer.DeferredList(
            [
                defer.ensureDeferred(connection_request(reactor, f"http://{phone.ip}:{cr_port}/"))
                for phone in chosen[start : start + CR_BATCH]
            ],
            consumeErrors=True,
        )
        statuses += [str(value) if success else repr(value.value) for success, value in results]
    answered = statuses.count("200")
    if answered != count:
        failures.append(f"{count - answered} connection requests not answered 200: {sorted(set(statuses))}")
    try:
        await within(fleet.wait_sessions(sessions_before + answered), reactor, args.time_limit)
    except defer.TimeoutError:
        failures.append("not every accepted connection request was followed by a session")
    try:
        await connection_request(reactor, f"http://{identity(n).ip}:{cr_port}/")  # the next address: no phone
        failures.append("a connection for an address with no phone was answered")
    except SessionError:
        pass
    counters = fleet.counters
    if counters.get("cr_refused", 0) != 1:
        failures.append("the connection for an address with no phone was not reset unread")
    print(
        f"connection requests: {answered}/{count} answered 200, {counters.get('connection_requests_accepted', 0)} "
        f"accepted, {counters.get('sessions_ok', 0) - sessions_before} sessions followed, in "
        f"{time.monotonic() - t0:.1f} s; connections for no phone reset unread: {counters.get('cr_refused', 0)}"
    )


async def run(reactor: Any, args: argparse.Namespace) -> int:
    child, acs_port = start_acs()
    _pin(1)
    temporary = None
    if args.state_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="bench-fleet-")
    settings: dict[str, Any] = {
        "acs.connection_request_username": CR_USER,
        "acs.connection_request_password": CR_PASSWORD,
    }
    if args.cr_port is not None:
        settings["acs.connection_request_port"] = args.cr_port
    cr_port = args.cr_port or 7547
    config = FleetConfig(
        acs_url=f"http://127.0.0.1:{acs_port}/cwmp",
        phones=args.phones,
        state_dir=Path(temporary.name if temporary is not None else args.state_dir),
        bootstrap=Credentials(ACS_USER, ACS_PASSWORD),
        ramp=args.ramp,
        settings=settings,
    )
    failures: list[str] = []
    try:
        fleet = Fleet(config, reactor=reactor)
        gc.collect()
        rss_before = rss_bytes()
        print(
            f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{args.phones} phones, ramp {args.ramp:g} s, RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}"
        )
        print(f"before the fleet: RSS {rss_before / MIB:.1f} MiB, {open_fds()} open files")
        sessions = await boot(reactor, fleet, child.pid, args, failures)
        await idle(reactor, fleet, cr_port, rss_before)
        await connection_requests(reactor, fleet, cr_port, sessions, args, failures)
        t0 = time.monotonic()
        await fleet.stop()
        print(f"stop: {time.monotonic() - t0:.1f} s (every phone off, its state on disk)")
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(10)
        if temporary is not None:
            temporary.cleanup()
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the boots are spread")
    parser.add_argument("--crs", type=int, default=100, help="connection requests sent after the boot")
    parser.add_argument("--cr-port", type=int, help="the phones' connection-request port (default: 7547, factory)")
    parser.add_argument("--state-dir", help="keep the state files here (default: a temporary directory)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds allowed per phase beyond the ramp")
    parser.add_argument("--serve-acs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_acs:
        serve_acs()
        return

    async def body(reactor: Any) -> None:
        status = await run(reactor, args)
        if status:
            raise SystemExit(status)  # task.react exits with it

    task.react(lambda reactor: defer.ensureDeferred(body(reactor)))


if __name__ == "__main__":
    main()
