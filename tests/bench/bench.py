#!/usr/bin/env python3
"""The gateway against nginx and HAProxy, side by side, on loopback.

One nginx instance is the backend (two ports, for split 50). Each proxy gets
one worker thread and is pinned to CPU 0; the backend and wrk share CPU 1.
For every round, every system runs the same wrk load in turn (keep-alive,
fixed connections and duration): first a small response, then 16 KiB.

Systems: direct (wrk to the backend: the limit), gateway at split 0,
gateway at split 50, nginx and HAProxy configured equivalently (keep-alive to
the upstream, access logs off).

Figures per system: requests/s, p50 and p99 latency, CPU seconds per 100k
requests of the proxy process(es), peak RSS. Medians over rounds, and the
median of per-round ratios gateway/nginx, gateway/HAProxy, gateway/direct.
Then scaling: each proxy with 1 and then 2 workers, unpinned, sharing both
cores with the backend (2 workers) and wrk (2 threads), small responses:
how requests/s grows with workers. Then: 100+ split changes at full load
(non-2xx must be 0), and 9,000 idle keep-alive client connections held by
each proxy (RSS growth per connection).
Last, user-space instructions per request for each proxy, counted by valgrind:
a deterministic figure where timings on a shared VM drift by 15% or more
(--instructions-only runs just this): small and 16 KiB responses; small ones
with each proxy's access log on (gateway combined to a file, nginx combined
to a file, HAProxy httplog to its standard output); and TCP relaying (the
gateway's TCP route, nginx's stream module, HAProxy's mode tcp) per
connection (one request, Connection: close) and per MiB (1 MiB responses on
one connection).  Then, with h2load as the client: HTTP/2 over TLS, HTTP/1.1 over
TLS, h2c, a new TLS connection per request, and gRPC unary calls h2c to h2c
(nginx grpc_pass, HAProxy proto h2, the gateway's h2c route) to a backend
nginx that answers each with an empty message and grpc-status 0. Last, the
floor (tests/bench/floor): tokio and the h2 crate doing these jobs with
nothing of the gateway around them (a TCP relay; HTTP/2 to an HTTP/1
upstream over TLS and h2c; HTTP/2 answered in place; a gRPC call h2c to
h2c), and the idle HTTP/2 connections of the h2 crate alone.

Timed runs limit each proxy to --cpu-quota cores per worker (0.4 by
default; a cgroup's CPU quota: v1's cpu.cfs_quota_us, else v2's cpu.max),
so the proxy is the bottleneck and wrk and the backend have headroom (the
tables say how much of its quota each proxy used: near 100%, it was the
limit). Also timed: small requests with each proxy's access log on, and
TCP relaying with a new connection per request.

Run through tests/bench/run.sh, which installs what this needs.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GATEWAY = os.path.join(ROOT, "target", "release", "gateway")
FLOOR = os.path.join(ROOT, "target", "release", "floor")
TOKEN = "bench-token"
BACKEND_PORTS = (18091, 18092)
PROXY_PORT = 18080
ADMIN_PORT = 18090
TCP_PORT = 18093
TLS_PORT = 18094
# nginx and HAProxy serve h2c on a port of its own; the gateway spots the
# preface on its plain port.
H2C_PORT = 18095
# The backend's gRPC service (h2c): a unary call answered with an empty
# message and grpc-status 0 in the trailers.
GRPC_PORT = 18096
GRPC_PATH = "/grpc.health.v1.Health/Check"
CONNECTIONS = 64
PROXY_CPU = "0"
LOAD_CPU = "1" if os.cpu_count() and os.cpu_count() > 1 else "0"
ALL_CPUS = f"0-{(os.cpu_count() or 1) - 1}"


def sbin(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def port_free(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return False
    except OSError:
        return True


def proc_tree(pid):
    """pid and its children (nginx workers)."""
    pids = [pid]
    try:
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            pids.extend(proc_tree(int(child)))
    except OSError:
        pass
    return pids


def cpu_seconds(pids):
    """(user, system) CPU seconds of the processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user / tick, system / tick


def rss_kib(pids, key="VmRSS"):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# The timed runs limit each proxy to this many cores per worker (a cgroup's
# CPU quota), so that the proxy, not wrk or the backend, is the bottleneck.
QUOTA = {"cores_per_worker": None}


def cpu_quota_group(cores):
    """A cgroup whose processes together get at most `cores` CPUs (cgroup v1's
    cpu controller, or v2's cpu.max); None where neither can be written."""
    name = f"cutover-bench-{round(cores * 100)}"
    # A 10 ms period: a throttled proxy waits at most a few ms, not the
    # default period's 60 ms (which would show as everyone's p99).
    period = 10_000
    for root, v2 in (("/sys/fs/cgroup/cpu", False), ("/sys/fs/cgroup", True)):
        group = f"{root}/{name}"
        try:
            if v2 and "cpu" not in open(f"{root}/cgroup.controllers").read().split():
                continue
            os.makedirs(group, exist_ok=True)
            if v2:
                write(f"{group}/cpu.max", f"{round(cores * period)} {period}")
            else:
                write(f"{group}/cpu.cfs_period_us", str(period))
                write(f"{group}/cpu.cfs_quota_us", str(round(cores * period)))
            return group
        except OSError:
            continue
    return None


class Server:
    """A process under test; `under` replaces the CPU pinning (e.g. valgrind).
    Outside valgrind, with a quota set, the process starts in its cgroup."""

    def __init__(self, name, argv, port, cpu=PROXY_CPU, cwd=None, env=None, under=None, workers=1, limited=True):
        self.name = name
        self.port = port
        cores = QUOTA["cores_per_worker"]
        self.quota = cores * workers if cores and limited and not under else None
        group = cpu_quota_group(self.quota) if self.quota else None

        def enter_group():
            if group:
                write(f"{group}/cgroup.procs", str(os.getpid()))

        self.proc = subprocess.Popen(
            (under or ["taskset", "-c", cpu]) + argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=enter_group,
        )
        wait_port(port, timeout=120 if under else 15)
        time.sleep(1 if under else 0.3)

    def pids(self):
        return proc_tree(self.proc.pid)

    def stop(self, sig=signal.SIGKILL):
        # The signal again every 5 s: nginx's stream module under valgrind
        # once slept through a single SIGTERM.
        for _ in range(24):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # nginx's worker can outlive its master for a moment, still holding
        # the port: the next system must not find it listening there.
        # (Under valgrind a process takes its time to go.)
        deadline = time.time() + 60
        while not port_free(self.port) and time.time() < deadline:
            time.sleep(0.05)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def backend(work, workers=1, cpu=LOAD_CPU):
    """nginx as the backend: /small (2 bytes) and /16k, on two ports; and a
    gRPC unary call on a third (h2c): any POST is answered with an empty
    gRPC message (5 zero bytes) and a `grpc-status: 0` trailer."""
    os.makedirs(f"{work}/backend/html", exist_ok=True)
    with open(f"{work}/backend/html/grpc-empty", "wb") as f:
        f.write(b"\0" * 5)
    write(f"{work}/backend/html/small", "ok")
    write(f"{work}/backend/html/16k", "x" * 16384)
    write(f"{work}/backend/html/1m", "x" * (1 << 20))
    write(f"{work}/backend/html/healthz", "ok")
    listens = "\n".join(f"listen 127.0.0.1:{p} reuseport;" for p in BACKEND_PORTS)
    write(
        f"{work}/backend/nginx.conf",
        f"""
worker_processes {workers}; daemon off; pid {work}/backend/nginx.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000; default_type text/plain;
  server {{ {listens} root {work}/backend/html; location / {{ }} }}
  server {{ listen 127.0.0.1:{GRPC_PORT} http2; root {work}/backend/html;
    location / {{ error_page 405 =200 /grpc-empty; return 405; }}
    location = /grpc-empty {{ internal; default_type application/grpc; add_trailer grpc-status 0 always; }} }} }}
""",
    )
    return Server("backend", [sbin("nginx"), "-c", f"{work}/backend/nginx.conf", "-p", f"{work}/backend"], BACKEND_PORTS[0], cpu=cpu, limited=False)


def certificate(work):
    """One self-signed P-256 certificate for every proxy; HAProxy reads the
    key from the same file."""
    if not os.path.exists(f"{work}/both.pem"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-days", "2", "-subj", "/CN=bench", "-addext", "subjectAltName=DNS:bench,IP:127.0.0.1",
                        "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem"], check=True, capture_output=True)
        write(f"{work}/both.pem", open(f"{work}/cert.pem").read() + open(f"{work}/key.pem").read())
    return f"{work}/cert.pem", f"{work}/key.pem"


def start_gateway(work, green_percent, under=None, workers=1, cpu=PROXY_CPU, extra="", port=PROXY_PORT):
    # The TCP route only when its port is the one measured, the gRPC route
    # only with the TLS and HTTP/2 cases (their health checks would add work
    # to every other measurement).
    more_routes = f"""
  - name: db
    tcp: {{listen: "127.0.0.1:{TCP_PORT}"}}
    blue: {{endpoints: ["127.0.0.1:{BACKEND_PORTS[0]}"]}}
    green: {{endpoints: ["127.0.0.1:{BACKEND_PORTS[1]}"]}}
    health_check: {{interval: 1s}}""" if port == TCP_PORT else ""
    listeners = f'{{address: "127.0.0.1:{PROXY_PORT}"}}'
    if port == TLS_PORT:
        more_routes += f"""
  - name: grpc
    path_prefix: /grpc.health.v1.Health/
    blue: {{protocol: h2c, endpoints: ["127.0.0.1:{GRPC_PORT}"]}}
    green: {{protocol: h2c, endpoints: ["127.0.0.1:{GRPC_PORT}"]}}
    health_check: {{protocol: tcp, interval: 1s}}"""
        cert, key = certificate(work)
        listeners += f', {{address: "127.0.0.1:{TLS_PORT}", tls: {{cert_file: "{cert}", key_file: "{key}"}}}}'
    write(
        f"{work}/gateway.yaml",
        f"""{extra}
listeners: [{listeners}]
admin: {{address: "127.0.0.1:{ADMIN_PORT}"}}
threads: {workers}
routes:
  - name: web
    initial_green_percent: {green_percent}
    blue: {{endpoints: ["127.0.0.1:{BACKEND_PORTS[0]}"]}}
    green: {{endpoints: ["127.0.0.1:{BACKEND_PORTS[1]}"]}}
    stickiness: {{header: x-client-id}}
    health_check: {{path: /healthz, interval: 1s}}{more_routes}
""",
    )
    env = dict(os.environ, GATEWAY_ADMIN_TOKEN=TOKEN, RUST_LOG="error")
    return Server(f"gateway split {green_percent}", [GATEWAY, "--config", f"{work}/gateway.yaml"], port, cpu=cpu, cwd=work, env=env, under=under, workers=workers)


def start_floor(mode, port, upstream_port=None, cert=None, under=None):
    """The gateway's building blocks alone (tests/bench/floor): what any
    proxy made of them costs at least. `cert`: (certificate, key) to serve
    TLS with."""
    upstream = [f"127.0.0.1:{upstream_port}"] if upstream_port else []
    return Server(f"floor {mode}", [FLOOR, mode, f"127.0.0.1:{port}"] + upstream + list(cert or ()), port, under=under)


FLOORS = {
    # case: (mode, its port, upstream port, TLS, what is run against it, counts)
    "small": ("h1-proxy", PROXY_PORT, BACKEND_PORTS[0], False, lambda n: fixed_requests(n), (400, 2400)),
    "tcp connection": ("tcp-relay", TCP_PORT, BACKEND_PORTS[0], False, lambda n: tcp_connections(n), (100, 600)),
    "h2 TLS": ("h2-proxy", TLS_PORT, BACKEND_PORTS[0], True, lambda n: h2load(f"https://127.0.0.1:{TLS_PORT}/small", n, 8), (400, 2400)),
    "h2c": ("h2-proxy", H2C_PORT, BACKEND_PORTS[0], False, lambda n: h2load(f"http://127.0.0.1:{H2C_PORT}/small", n, 8), (400, 2400)),
    "h2c, answered in place": ("h2-server", H2C_PORT, None, False, lambda n: h2load(f"http://127.0.0.1:{H2C_PORT}/small", n, 8), (400, 2400)),
    "gRPC h2c": ("h2-relay", H2C_PORT, GRPC_PORT, False, lambda n: h2load(f"http://127.0.0.1:{H2C_PORT}{GRPC_PATH}", n, 8), (400, 2400)),
}


def floor_instructions(work, instructions):
    """User-space instructions of the building blocks alone (tokio and
    httparse passing HTTP/1 requests on; tokio relaying a TCP connection; the h2 crate passing HTTP/2 requests to an HTTP/1
    upstream, over TLS and h2c, answering them in place, and on both sides
    of a gRPC call): the least a proxy built of them can cost."""
    instructions["floor"] = {}
    for case, (mode, port, upstream, tls, run, counts) in FLOORS.items():
        cert = certificate(work) if tls else None
        start = lambda under=None: start_floor(mode, port, upstream, cert, under)
        instructions["floor"][case] = instructions_of(work, start, run, counts)
        print(f"instructions floor      {instructions['floor'][case]:.0f} per {'connection' if case == 'tcp connection' else 'request'}, {case} ({mode})", flush=True)


def start_nginx(work, under=None, workers=1, cpu=PROXY_CPU, log="off", port=PROXY_PORT):
    os.makedirs(f"{work}/nginx", exist_ok=True)
    location = 'location / { proxy_pass http://blue; proxy_http_version 1.1; proxy_set_header Connection ""; }'
    tls = ""
    if port == TLS_PORT:
        cert, key = certificate(work)
        # TLS 1.3 as the gateway and HAProxy serve it (nginx 1.22 offers
        # only up to 1.2 unless told: a cheaper handshake, not a like one).
        tls = (f"server {{ listen 127.0.0.1:{TLS_PORT} ssl http2; ssl_protocols TLSv1.2 TLSv1.3; "
               f"ssl_certificate {cert}; ssl_certificate_key {key}; {location} }}\n"
               f"  upstream grpc {{ server 127.0.0.1:{GRPC_PORT}; keepalive 128; }}\n"
               f"  server {{ listen 127.0.0.1:{H2C_PORT} http2; {location} "
               f"location /grpc.health.v1.Health/ {{ grpc_pass grpc://grpc; }} }}")
    write(
        f"{work}/nginx/nginx.conf",
        f"""
worker_processes {workers}; daemon off; pid {work}/nginx/nginx.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{ access_log {log}; keepalive_requests 1000000;
  upstream blue {{ server 127.0.0.1:{BACKEND_PORTS[0]}; keepalive 128; }}
  server {{ listen 127.0.0.1:{PROXY_PORT}; {location} }}
  {tls} }}
""",
    )
    # Under valgrind the one worker must be the process valgrind watches.
    single = ["-g", "master_process off;"] if under else []
    return Server("nginx", [sbin("nginx"), "-c", f"{work}/nginx/nginx.conf", "-p", f"{work}/nginx"] + single, port, cpu=cpu, under=under, workers=workers)


def start_nginx_stream(work, under=None, cpu=PROXY_CPU):
    """nginx's stream module relaying TCP to the backend."""
    os.makedirs(f"{work}/nginx-stream", exist_ok=True)
    write(
        f"{work}/nginx-stream/nginx.conf",
        f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid {work}/nginx-stream/nginx.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
stream {{ server {{ listen 127.0.0.1:{TCP_PORT}; proxy_pass 127.0.0.1:{BACKEND_PORTS[0]}; }} }}
""",
    )
    single = ["-g", "master_process off;"] if under else []
    return Server("nginx stream", [sbin("nginx"), "-c", f"{work}/nginx-stream/nginx.conf", "-p", f"{work}/nginx-stream"] + single, TCP_PORT, cpu=cpu, under=under)


def start_haproxy(work, under=None, workers=1, cpu=PROXY_CPU, mode="http", log=False, port=None):
    # This sandbox caps open files at 20,000; HAProxy needs 2 per connection.
    # (valgrind keeps some descriptors for itself: no raised limit under it.)
    limits = "  maxconn 1000\n" if under else "  maxconn 9990\n  ulimit-n 20000\n"
    tls, grpc_backend = "", ""
    if port == TLS_PORT:
        grpc_backend = f"backend grpc\n  server g 127.0.0.1:{GRPC_PORT} proto h2\n"
        certificate(work)
        tls = (f"  bind 127.0.0.1:{TLS_PORT} ssl crt {work}/both.pem alpn h2,http/1.1\n"
               f"  bind 127.0.0.1:{H2C_PORT} proto h2\n"
               f"  use_backend grpc if {{ path_beg /grpc.health.v1.Health/ }}\n")
    write(
        f"{work}/haproxy.cfg",
        f"""
global
  nbthread {workers}
{"  log stdout format raw daemon" + chr(10) if log else ""}{limits}defaults
  mode {mode}
{"  log global" + chr(10) + "  option httplog" + chr(10) if log else ""}  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:{TCP_PORT if mode == "tcp" else PROXY_PORT}
{tls}  default_backend be
backend be
  server blue 127.0.0.1:{BACKEND_PORTS[0]}
{grpc_backend}""",
    )
    port = port or (TCP_PORT if mode == "tcp" else PROXY_PORT)
    return Server(f"haproxy {mode}", [sbin("haproxy"), "-f", f"{work}/haproxy.cfg", "-db"], port, cpu=cpu, under=under, workers=workers)


def wrk(url, duration, headers=(), cpu=LOAD_CPU, threads=1):
    argv = ["taskset", "-c", cpu, "wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "requests": requests, "p50_ms": pct(50), "p99_ms": pct(99), "non2xx": non2xx, "socket_errors": errors}


def measure(server, url, duration, headers=(), **wrk_args):
    pids = server.pids() if server else []
    user0, sys0 = cpu_seconds(pids)
    sticky = ["x-client-id: bench"] if server and "gateway" in server.name else []
    result = wrk(url, duration, headers=sticky + list(headers), **wrk_args)
    user1, sys1 = cpu_seconds(pids)
    if result["non2xx"] or result["socket_errors"]:
        raise RuntimeError(f"{server.name if server else 'direct'} {url}: {result['non2xx']} non-2xx, {result['socket_errors']} socket errors")
    per_100k = 100_000 / result["requests"]
    result["cpu_s_per_100k"] = (user1 - user0 + sys1 - sys0) * per_100k if server else None
    result["user_s_per_100k"] = (user1 - user0) * per_100k if server else None
    result["sys_s_per_100k"] = (sys1 - sys0) * per_100k if server else None
    result["peak_rss_mib"] = rss_kib(pids, "VmHWM") / 1024 if server else None
    # How much of its CPU quota the proxy used: near 100%, it was the
    # bottleneck (wrk's own time is included in `duration`, close enough).
    quota = server.quota if server else None
    result["quota_used"] = (user1 - user0 + sys1 - sys0) / (duration * quota) if quota else None
    return result


def measure_h2load(server, url, duration):
    """HTTP/2 over TLS for `duration` seconds: 64 connections, one stream at
    a time each (as wrk's 64 connections), pinned where wrk would be."""
    pids = server.pids()
    user0, sys0 = cpu_seconds(pids)
    argv = ["taskset", "-c", LOAD_CPU, "h2load", "-D", str(duration), "-c", str(CONNECTIONS), "-m", "1", url]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    user1, sys1 = cpu_seconds(pids)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not done or not codes or int(codes.group(1)) != int(done.group(1)):
        raise RuntimeError(f"{server.name} {url}: not every answer 2xx:\n{out[-600:]}")
    requests = int(done.group(1))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[mean.group(2)]
    cpu = user1 - user0 + sys1 - sys0
    return {
        "rps": requests / duration,
        "mean_ms": float(mean.group(1)) * scale,
        "cpu_s_per_100k": cpu * 100_000 / requests,
        "quota_used": cpu / (duration * server.quota) if server.quota else None,
    }


def put_split(percent):
    req = urllib.request.Request(
        f"http://127.0.0.1:{ADMIN_PORT}/v1/routes/web/split",
        data=json.dumps({"green_percent": percent}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return r.status


def split_changes_under_load(work, duration):
    gw = start_gateway(work, 0)
    try:
        changes = []
        stop = threading.Event()

        def flip():
            i = 0
            while not stop.is_set():
                changes.append(put_split(50 if i % 2 == 0 else 0))
                i += 1
                time.sleep(max(duration / 150, 0.01))

        t = threading.Thread(target=flip)
        t.start()
        result = wrk(f"http://127.0.0.1:{PROXY_PORT}/small", duration)
        stop.set()
        t.join()
        return {"changes": len(changes), "changes_ok": sum(1 for c in changes if c == 200), **result}
    finally:
        gw.stop()


# An HTTP/2 client with prior knowledge: the preface, empty SETTINGS, and
# `GET /small` on stream 1 (HPACK: static-table :method GET, :scheme http,
# :path /, then :path /small and :authority bench as literals).
H2_GET = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
          + b"\x00\x00\x11\x01\x05\x00\x00\x00\x01" + b"\x82\x86\x04\x06/small\x01\x05bench")


async def hold_idle(n, port=PROXY_PORT, h2=False):
    """n connections that each asked once and then wait (keep-alive)."""
    conns = []
    for _ in range(n):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(H2_GET if h2 else b"GET /small HTTP/1.1\r\nHost: bench\r\nx-client-id: idle\r\n\r\n")
        conns.append((r, w))
    for r, _ in conns:
        if h2:
            # Frames until the response's DATA (type 0) has come.
            while True:
                head = await r.readexactly(9)
                await r.readexactly(int.from_bytes(head[:3], "big"))
                if head[3] == 0:
                    break
        else:
            await r.readuntil(b"\r\n\r\n")
            await r.readexactly(2)
    return conns


def idle_connections(server, n, port=PROXY_PORT, h2=False):
    pids = server.pids()
    before = rss_kib(pids)
    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(hold_idle(n, port, h2))
    time.sleep(1)
    after = rss_kib(pids)
    for _, w in conns:
        w.close()
    loop.close()
    return {"connections": n, "rss_before_mib": before / 1024, "rss_after_mib": after / 1024, "bytes_per_connection": (after - before) * 1024 / n}


def fixed_requests(n, path="/small", connections=8):
    """Exactly n keep-alive requests (the request wrk sends), all checked 200."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{PROXY_PORT}\r\nx-client-id: bench\r\n\r\n".encode()
    socks = [socket.create_connection(("127.0.0.1", PROXY_PORT)) for _ in range(connections)]
    for _ in range(n // connections):
        for s in socks:
            s.sendall(request)
        for s in socks:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, body = buf.split(b"\r\n\r\n", 1)
            if b" 200 " not in head.split(b"\r\n")[0]:
                raise RuntimeError(f"instruction count: {head.splitlines()[0]!r}")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += s.recv(65536)
    for s in socks:
        s.close()


def tcp_connections(n, path="/small"):
    """n connections to the TCP port, each one request to its end (close)."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", TCP_PORT)) as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            if b" 200 " not in answer.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"tcp relay: {answer[:80]!r}")


def tcp_mebibytes(n):
    """n responses of 1 MiB on one connection through the TCP port."""
    request = b"GET /1m HTTP/1.1\r\nHost: bench\r\n\r\n"
    with socket.create_connection(("127.0.0.1", TCP_PORT)) as s:
        for _ in range(n):
            s.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, body = buf.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += s.recv(1 << 20)


def h2load(url, n, clients, h1=False):
    """n requests over `clients` connections (one stream at a time each),
    every answer checked to be 2xx; to the gRPC path, unary gRPC calls."""
    argv = ["h2load", "-n", str(n), "-c", str(clients), "-m", "1"] + (["--h1"] if h1 else [])
    if url.endswith(GRPC_PATH):
        body = os.path.join(tempfile.gettempdir(), "cutover-bench-grpc-request")
        with open(body, "wb") as f:
            f.write(b"\0" * 5)  # an empty HealthCheckRequest, gRPC-framed
        argv += ["-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    m = re.search(r"status codes: (\d+) 2xx", out)
    if not m or int(m.group(1)) != n:
        raise RuntimeError(f"h2load {url}: not {n} 2xx answers:\n{out[-600:]}")
    return out


TLS_CASES = {
    # name: (URL for the gateway, for nginx and HAProxy, h1, counts, connections)
    "h2 TLS": (f"https://127.0.0.1:{TLS_PORT}/small", f"https://127.0.0.1:{TLS_PORT}/small", False, (400, 2400), 8),
    "h1 TLS": (f"https://127.0.0.1:{TLS_PORT}/small", f"https://127.0.0.1:{TLS_PORT}/small", True, (400, 2400), 8),
    "h2c": (f"http://127.0.0.1:{PROXY_PORT}/small", f"http://127.0.0.1:{H2C_PORT}/small", False, (400, 2400), 8),
    "TLS handshake": (f"https://127.0.0.1:{TLS_PORT}/small", f"https://127.0.0.1:{TLS_PORT}/small", True, (50, 300), None),
    "gRPC h2c": (f"http://127.0.0.1:{PROXY_PORT}{GRPC_PATH}", f"http://127.0.0.1:{H2C_PORT}{GRPC_PATH}", False, (400, 2400), 8),
}


def tls_instructions(work, instructions):
    """User-space instructions per request for HTTP/2 over TLS, HTTP/1.1
    over TLS and h2c (keep-alive, 8 connections), and per new TLS connection
    with one request (a full handshake each: h2load does not resume)."""
    starters = {
        "gateway-0": lambda under=None: start_gateway(work, 0, under, port=TLS_PORT),
        "nginx": lambda under=None: start_nginx(work, under, port=TLS_PORT),
        "haproxy": lambda under=None: start_haproxy(work, under, port=TLS_PORT),
    }
    for name, start in starters.items():
        for case, (gateway_url, other_url, h1, counts, clients) in TLS_CASES.items():
            url = gateway_url if name.startswith("gateway") else other_url
            run = lambda n: h2load(url, n, clients or n, h1)
            instructions[name][case] = instructions_of(work, start, run, counts)
            print(f"instructions {name:10} {instructions[name][case]:.0f} per {'connection' if case == 'TLS handshake' else 'request'}, {case}", flush=True)


def instructions_of(work, start, run, counts):
    """User-space instructions of `run(n)` for the two counts, their
    difference per unit of the second minus the first (valgrind)."""
    totals = []
    for n in counts:
        out = f"{work}/cachegrind.out"
        server = start(["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"])
        try:
            run(n)
        finally:
            server.stop(signal.SIGTERM)
        totals.append(next(int(line.split()[1]) for line in open(out) if line.startswith("summary:")))
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def instructions_per_request(work, start, path):
    """User-space instructions per request, counted by valgrind (cachegrind,
    no cache simulation): deterministic, unlike timings on a shared VM. Two
    runs with different request counts; the difference cancels start-up and
    shutdown. Kernel work (TCP, wake-ups) is not included."""
    totals = []
    for n in (400, 2400):
        out = f"{work}/cachegrind.out"
        server = start(["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"])
        try:
            fixed_requests(n, path)
        finally:
            server.stop(signal.SIGTERM)
        totals.append(next(int(line.split()[1]) for line in open(out) if line.startswith("summary:")))
    return (totals[1] - totals[0]) / 2000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    # 9,000, not 10,000: this machine caps open files at 20,000 per process
    # and HAProxy reserves two per connection (maxconn ≤ 9,993).
    ap.add_argument("--idle", type=int, default=9_000, help="idle keep-alive connections per proxy")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--cpu-quota", type=float, default=0.4,
                    help="cores each proxy worker may use in the timed runs (a cgroup's CPU quota), so the proxy is the bottleneck; 0: no quota")
    ap.add_argument("--instructions-only", action="store_true", help="only count instructions per request (valgrind)")
    args = ap.parse_args()
    ports = (PROXY_PORT, ADMIN_PORT, TCP_PORT, TLS_PORT, H2C_PORT, GRPC_PORT) + BACKEND_PORTS
    for port in ports:
        if not port_free(port):
            sys.exit(f"port {port} is busy; the benchmark needs {', '.join(map(str, sorted(ports)))}")
    work = tempfile.mkdtemp(prefix="cutover-bench-")
    # nginx workers drop to an unprivileged user: they must read the files.
    os.chmod(work, 0o755)
    # Each starts a system; `under` runs it under another program (valgrind).
    starters = {
        "direct": None,
        "gateway-0": lambda under=None, **kw: start_gateway(work, 0, under, **kw),
        "gateway-50": lambda under=None, **kw: start_gateway(work, 50, under, **kw),
        "nginx": lambda under=None, **kw: start_nginx(work, under, **kw),
        "haproxy": lambda under=None, **kw: start_haproxy(work, under, **kw),
    }
    results, scaling, split, idle, extras, h2 = {}, {}, None, {}, {}, {}
    if args.cpu_quota and not args.instructions_only:
        if cpu_quota_group(args.cpu_quota):
            QUOTA["cores_per_worker"] = args.cpu_quota
        else:
            print("no writable cgroup cpu controller: timed runs without a CPU quota (wrk and the backend may be the bottleneck)", flush=True)
    be = backend(work)
    try:
        if not args.instructions_only:
            results = throughput(starters, args)
            extras = timed_extras(work, args)
            h2 = timed_h2(work, args)
            be.stop()
            be = backend(work, workers=2, cpu=ALL_CPUS)
            scaling = workers_scaling(starters, args)
            be.stop()
            be = backend(work)
            split = split_changes_under_load(work, args.duration)
            print(f"split changes under load: {split['changes']} changes ({split['changes_ok']} accepted), {split['requests']} requests, non-2xx {split['non2xx']}, socket errors {split['socket_errors']}", flush=True)
            for name in ("gateway-0", "nginx", "haproxy"):
                server = starters[name]()
                try:
                    idle[name] = idle_connections(server, args.idle)
                    print(f"idle {name:10} {idle[name]['bytes_per_connection']:.0f} bytes/connection ({args.idle} connections)", flush=True)
                finally:
                    server.stop()
            # HTTP/2 (h2c) connections that asked once; 2,000 of them: each
            # holds the h2 state and the windows' buffers on all sides.
            with_h2c = {
                "gateway-0": (lambda: start_gateway(work, 0, port=TLS_PORT), PROXY_PORT),
                "nginx": (lambda: start_nginx(work, port=TLS_PORT), H2C_PORT),
                "haproxy": (lambda: start_haproxy(work, port=TLS_PORT), H2C_PORT),
            }
            with_h2c["floor (h2 crate alone)"] = (lambda: start_floor("h2-server", H2C_PORT), H2C_PORT)
            for name, (start, port) in with_h2c.items():
                server = start()
                try:
                    idle[f"{name}, HTTP/2"] = idle_connections(server, 2000, port, h2=True)
                    print(f"idle {name:10} {idle[name + ', HTTP/2']['bytes_per_connection']:.0f} bytes/HTTP/2 connection (2000 connections)", flush=True)
                finally:
                    server.stop()
        instructions = {}
        for name in ("gateway-0", "nginx", "haproxy"):
            instructions[name] = {size: instructions_per_request(work, starters[name], f"/{size}") for size in ("small", "16k")}
            print(f"instructions {name:10} {instructions[name]['small']:.0f} per small request, {instructions[name]['16k']:.0f} per 16k", flush=True)
        logged = {
            "gateway-0": lambda under=None: start_gateway(work, 0, under, extra=f'access_log: {{path: "{work}/gateway-access.log", format: combined}}'),
            "nginx": lambda under=None: start_nginx(work, under, log=f"{work}/nginx/access.log combined"),
            "haproxy": lambda under=None: start_haproxy(work, under, log=True),
        }
        for name, start in logged.items():
            instructions[name]["small, access log on"] = instructions_per_request(work, start, "/small")
            print(f"instructions {name:10} {instructions[name]['small, access log on']:.0f} per small request with its access log on", flush=True)
        relays = {
            "gateway-0": lambda under=None: start_gateway(work, 0, under, port=TCP_PORT),
            "nginx": lambda under=None: start_nginx_stream(work, under),
            "haproxy": lambda under=None: start_haproxy(work, under, mode="tcp"),
        }
        for name, start in relays.items():
            instructions[name]["tcp connection"] = instructions_of(work, start, tcp_connections, (100, 600))
            instructions[name]["tcp MiB"] = instructions_of(work, start, tcp_mebibytes, (10, 60))
            print(f"instructions {name:10} {instructions[name]['tcp connection']:.0f} per TCP connection, {instructions[name]['tcp MiB']:.0f} per MiB relayed", flush=True)
        tls_instructions(work, instructions)
        floor_instructions(work, instructions)
    finally:
        be.stop()
        shutil.rmtree(work, ignore_errors=True)

    report(results, scaling, split, idle, instructions, args)
    if extras:
        report_extras(extras)
    if h2:
        report_h2(h2)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "extras": extras, "h2": h2, "scaling": scaling, "split": split, "idle": idle, "instructions": instructions}, f, indent=2)


def throughput(starters, args):
    """Every system in turn within each round, both response sizes."""
    results = {size: {name: [] for name in starters} for size in ("small", "16k")}
    for rnd in range(args.rounds):
        for name, start in starters.items():
            server = start() if start else None
            try:
                port = PROXY_PORT if server else BACKEND_PORTS[0]
                for size in ("small", "16k"):
                    r = measure(server, f"http://127.0.0.1:{port}/{size}", args.duration)
                    results[size][name].append(r)
                    print(f"round {rnd + 1} {name:10} {size:5} {r['rps']:9.0f} rps  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
                          + (f"  cpu {r['cpu_s_per_100k']:.2f} s/100k (user {r['user_s_per_100k']:.2f})  rss {r['peak_rss_mib']:.1f} MiB" if server else ""), flush=True)
            finally:
                if server:
                    server.stop()
    return results


def timed_extras(work, args):
    """Small requests with each proxy's access log on, and TCP relaying with
    a new connection per request (wrk sends `Connection: close`; the backend
    closes, the relay follows): every system in turn within each round."""
    close = ("Connection: close",)
    systems = {
        "gateway-0, access log": (lambda: start_gateway(work, 0, extra=f'access_log: {{path: "{work}/gateway-access.log", format: combined}}'), PROXY_PORT, ()),
        "nginx, access log": (lambda: start_nginx(work, log=f"{work}/nginx/access.log combined"), PROXY_PORT, ()),
        "haproxy, access log": (lambda: start_haproxy(work, log=True), PROXY_PORT, ()),
        "gateway-0, TCP": (lambda: start_gateway(work, 0, port=TCP_PORT), TCP_PORT, close),
        "nginx, stream": (lambda: start_nginx_stream(work), TCP_PORT, close),
        "haproxy, mode tcp": (lambda: start_haproxy(work, mode="tcp"), TCP_PORT, close),
    }
    results = {name: [] for name in systems}
    for rnd in range(args.rounds):
        for name, (start, port, headers) in systems.items():
            server = start()
            try:
                r = measure(server, f"http://127.0.0.1:{port}/small", args.duration, headers=headers)
            finally:
                server.stop()
            results[name].append(r)
            print(f"round {rnd + 1} {name:21} {r['rps']:9.0f} rps  p99 {r['p99_ms']:.2f} ms  cpu {r['cpu_s_per_100k']:.2f} s/100k"
                  + (f"  quota used {r['quota_used']:.0%}" if r["quota_used"] else ""), flush=True)
    return results


def timed_h2(work, args):
    """HTTP/2 over TLS (h2load): every proxy in turn within each round."""
    systems = {
        "gateway-0": lambda: start_gateway(work, 0, port=TLS_PORT),
        "nginx": lambda: start_nginx(work, port=TLS_PORT),
        "haproxy": lambda: start_haproxy(work, port=TLS_PORT),
    }
    results = {name: [] for name in systems}
    for rnd in range(args.rounds):
        for name, start in systems.items():
            server = start()
            try:
                r = measure_h2load(server, f"https://127.0.0.1:{TLS_PORT}/small", args.duration)
            finally:
                server.stop()
            results[name].append(r)
            print(f"round {rnd + 1} {name:10} HTTP/2 TLS {r['rps']:9.0f} rps  mean {r['mean_ms']:.2f} ms  cpu {r['cpu_s_per_100k']:.2f} s/100k"
                  + (f"  quota used {r['quota_used']:.0%}" if r["quota_used"] else ""), flush=True)
    return results


def report_h2(h2):
    print("\nHTTP/2 over TLS (h2load, 64 connections, one stream each), small response, medians")
    print("| proxy | req/s | mean ms | CPU s / 100k req | CPU quota used | req/s / nginx's (per-round median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in h2.items():
        used = med([r["quota_used"] for r in runs])
        ratio = med([a["rps"] / b["rps"] for a, b in zip(runs, h2["nginx"])])
        print(f"| {name} | {med([r['rps'] for r in runs]):.0f} | {med([r['mean_ms'] for r in runs]):.2f} | {med([r['cpu_s_per_100k'] for r in runs]):.2f} | {'-' if used is None else f'{used:.0%}'} | {ratio:.2f} |")


def report_extras(extras):
    print("\naccess log on, and TCP relaying (a new connection per request): small response, medians")
    print("| system | req/s | p99 ms | CPU s / 100k req | CPU quota used |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in extras.items():
        used = med([r["quota_used"] for r in runs])
        print(f"| {name} | {med([r['rps'] for r in runs]):.0f} | {med([r['p99_ms'] for r in runs]):.2f} | {med([r['cpu_s_per_100k'] for r in runs]):.2f} | {'-' if used is None else f'{used:.0%}'} |")
    print("\nratios (median of per-round ratios):")
    print("| ratio | req/s | CPU / req |")
    print("|---|---:|---:|")
    for gw, others in (("gateway-0, access log", ("nginx, access log", "haproxy, access log")), ("gateway-0, TCP", ("nginx, stream", "haproxy, mode tcp"))):
        for other in others:
            a, b = extras[gw], extras[other]
            rps = med([x["rps"] / y["rps"] for x, y in zip(a, b)])
            cpu = med([x["cpu_s_per_100k"] / y["cpu_s_per_100k"] for x, y in zip(a, b)])
            print(f"| {gw} / {other} | {rps:.2f} | {cpu:.2f} |")


def workers_scaling(starters, args):
    """Each proxy with 1, then 2 workers, everything sharing every core."""
    results = {name: {1: [], 2: []} for name in ("gateway-0", "nginx", "haproxy")}
    for rnd in range(args.rounds):
        for name in results:
            for workers in (1, 2):
                server = starters[name](workers=workers, cpu=ALL_CPUS)
                try:
                    r = measure(server, f"http://127.0.0.1:{PROXY_PORT}/small", args.duration, cpu=ALL_CPUS, threads=2)
                finally:
                    server.stop()
                results[name][workers].append(r)
                print(f"round {rnd + 1} {name:10} {workers} worker(s) {r['rps']:9.0f} rps  p99 {r['p99_ms']:.2f} ms  cpu {r['cpu_s_per_100k']:.2f} s/100k", flush=True)
    return results


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(results, scaling, split, idle, instructions, args):
    if results:
        report_timed(results, split, idle, args)
    if scaling:
        report_scaling(scaling)
    print("\nuser-space instructions (valgrind; kernel work not included):")
    print("| proxy | per small request | per 16 KiB request | per small request, access log on | per TCP connection | per MiB relayed over TCP | HTTP/2 over TLS | HTTP/1.1 over TLS | h2c | new TLS connection + request | gRPC unary, h2c to h2c |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, i in instructions.items():
        cells = [i.get(k) for k in ("small", "16k", "small, access log on", "tcp connection", "tcp MiB", "h2 TLS", "h1 TLS", "h2c", "TLS handshake", "gRPC h2c")]
        print(f"| {name} | " + " | ".join("-" if c is None else f"{c:.0f}" for c in cells) + " |")


def report_scaling(scaling):
    print(f"\nworkers: small response, every process unpinned on CPUs {ALL_CPUS} (backend 2 workers, wrk 2 threads), medians")
    print("| proxy | 1 worker req/s | 2 workers req/s | growth | p99 ms, 2 workers | CPU s / 100k req, 2 workers | CPU quota used, 1 / 2 workers |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in scaling.items():
        one, two = med([r["rps"] for r in runs[1]]), med([r["rps"] for r in runs[2]])
        growth = med([b["rps"] / a["rps"] for a, b in zip(runs[1], runs[2])])
        used = [med([r["quota_used"] for r in runs[w]]) for w in (1, 2)]
        used = "-" if None in used else f"{used[0]:.0%} / {used[1]:.0%}"
        print(f"| {name} | {one:.0f} | {two:.0f} | {growth:.2f}× | {med([r['p99_ms'] for r in runs[2]]):.2f} | {med([r['cpu_s_per_100k'] for r in runs[2]]):.2f} | {used} |")


def report_timed(results, split, idle, args):
    print()
    cores = QUOTA["cores_per_worker"]
    print(f"CPU quota: {cores} cores per proxy worker (cgroup)" if cores else "CPU quota: none")
    print(f"machine: {os.cpu_count()} cores; proxies pinned to CPU {PROXY_CPU}, backend and wrk to CPU {LOAD_CPU}; "
          f"wrk -t1 -c{CONNECTIONS} -d{args.duration}s, {args.rounds} round(s), medians")
    for size in ("small", "16k"):
        print(f"\n{size} response")
        print("| system | req/s | p50 ms | p99 ms | CPU s / 100k req | of which user | of which kernel | peak RSS MiB | CPU quota used |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

        def fmt(value, digits):
            return "-" if value is None else f"{value:.{digits}f}"

        for name, runs in results[size].items():
            figures = [med([r[k] for r in runs]) for k in ("cpu_s_per_100k", "user_s_per_100k", "sys_s_per_100k", "peak_rss_mib")]
            used = med([r["quota_used"] for r in runs])
            print(f"| {name} | {med([r['rps'] for r in runs]):.0f} | {med([r['p50_ms'] for r in runs]):.2f} | {med([r['p99_ms'] for r in runs]):.2f} | "
                  + " | ".join(fmt(v, 1 if k == 3 else 2) for k, v in enumerate(figures)) + f" | {'-' if used is None else f'{used:.0%}'} |")
        print(f"\nratios (median of per-round ratios), gateway at split 0:")
        print("| ratio | req/s | p99 | CPU / req |")
        print("|---|---:|---:|---:|")
        gw = results[size]["gateway-0"]
        for other in ("nginx", "haproxy", "direct"):
            o = results[size][other]
            rps = med([a["rps"] / b["rps"] for a, b in zip(gw, o)])
            p99 = med([a["p99_ms"] / b["p99_ms"] for a, b in zip(gw, o)])
            cpu = med([a["cpu_s_per_100k"] / b["cpu_s_per_100k"] for a, b in zip(gw, o) if b["cpu_s_per_100k"]]) if other != "direct" else None
            print(f"| gateway/{other} | {rps:.2f} | {p99:.2f} | {'-' if cpu is None else f'{cpu:.2f}'} |")
    print(f"\nsplit changes at full load: {split['changes']} changes, {split['requests']} requests, non-2xx {split['non2xx']}, socket errors {split['socket_errors']}")
    print("\nidle keep-alive connections:")
    print("| proxy | connections | RSS before MiB | RSS after MiB | bytes / connection |")
    print("|---|---:|---:|---:|---:|")
    for name, i in idle.items():
        print(f"| {name} | {i['connections']} | {i['rss_before_mib']:.1f} | {i['rss_after_mib']:.1f} | {i['bytes_per_connection']:.0f} |")


if __name__ == "__main__":
    main()
