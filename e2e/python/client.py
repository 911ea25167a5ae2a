"""Drives Python's official Kubernetes client (Debian python3-kubernetes) against a kexec lab.

Run by e2e/python-client.test.ts as `/usr/bin/python3 e2e/python/client.py KUBECONFIG SCENARIO [ARG...]`;
prints one JSON object on stdout with what the client saw, which the test judges. Each scenario is
the client's documented way to do the thing (kubernetes.stream.stream / portforward, watch.Watch,
read_namespaced_pod_log), so a difference from a real cluster shows as a failed assertion there.
"""
import json
import sys
import time

import select

from kubernetes import client, config, watch
from kubernetes.stream import portforward, stream, ws_client


class _PendingAwarePoll:
    """select.poll that also reports an SSL socket with decrypted bytes already buffered.

    Works around kubernetes-client/python#2414 (fixed upstream by #2646, after Debian's 22.6):
    WSClient.update() polls the raw socket, which stays quiet when the next WebSocket frame already
    sits in the SSL buffer, so a session whose last frames came in one TLS record hangs until the
    timeout (returncode None). Real clusters show it too (kubernetes-client/python#2156).
    """

    def __init__(self):
        self._poll = select.poll()
        self._socks = []

    def register(self, sock, mask):
        self._socks.append(sock)
        self._poll.register(sock, mask)

    def unregister(self, sock):
        self._socks.remove(sock)
        self._poll.unregister(sock)

    def poll(self, timeout=None):
        ready = [(s.fileno(), select.POLLIN) for s in self._socks if getattr(s, 'pending', lambda: 0)()]
        return ready or self._poll.poll(timeout)


class _Select:
    POLLIN = select.POLLIN
    poll = _PendingAwarePoll
    select = staticmethod(select.select)


ws_client.select = _Select

DEADLINE = 20.0  # seconds any one scenario may take


def core(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    return client.CoreV1Api()


def exec_stream(v1, command, stdin=False, tty=False):
    return stream(
        v1.connect_get_namespaced_pod_exec, 'demo', 'default', command=command,
        stdin=stdin, stdout=True, stderr=not tty, tty=tty, _preload_content=False)


def read_until(resp, want_len):
    """Reads stdout until `want_len` characters came, the session ended, or the deadline."""
    out = ''
    end = time.monotonic() + DEADLINE
    while len(out) < want_len and resp.is_open() and time.monotonic() < end:
        resp.update(timeout=0.5)
        out += resp.read_stdout() if resp.peek_stdout() else ''
    return out


def scenario_list(v1, _args):
    pods = v1.list_namespaced_pod('default')
    return {'names': sorted(p.metadata.name for p in pods.items), 'kind': pods.kind}


def scenario_returncode(v1, _args):
    resp = exec_stream(v1, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
    resp.run_forever(timeout=DEADLINE)
    return {'returncode': resp.returncode, 'stdout': resp.read_stdout(), 'stderr': resp.read_stderr()}


def scenario_stdin(v1, args):
    """`head -c N` ends once it has the bytes: v4 has no stdin close, so the command must."""
    as_str = args[0] == 'str'
    data = 'hello from python\n'
    resp = exec_stream(v1, ['head', '-c', str(len(data))], stdin=True)
    resp.write_stdin(data if as_str else data.encode())
    out = read_until(resp, len(data))
    resp.run_forever(timeout=DEADLINE)
    return {'stdout': out, 'returncode': resp.returncode}


def scenario_tty_resize(v1, _args):
    resp = exec_stream(v1, ['sh', '-c', 'read x; stty size'], stdin=True, tty=True)
    resp.write_channel(4, json.dumps({'Width': 100, 'Height': 33}))
    resp.write_stdin('go\r')
    out = ''
    end = time.monotonic() + DEADLINE
    while '33 100' not in out and resp.is_open() and time.monotonic() < end:
        resp.update(timeout=0.5)
        out += resp.read_stdout() if resp.peek_stdout() else ''
    resp.run_forever(timeout=DEADLINE)
    return {'stdout': out, 'returncode': resp.returncode}


def scenario_port_forward(v1, args):
    port = int(args[0])
    pf = portforward(v1.connect_get_namespaced_pod_portforward, 'web', 'default', ports=str(port))
    sock = pf.socket(port)
    sock.settimeout(DEADLINE)
    sock.sendall(b'GET / HTTP/1.0\r\nHost: web\r\n\r\n')
    data = b''
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    error = pf.error(port)
    pf.close()
    return {'body': data.split(b'\r\n\r\n', 1)[-1].decode(), 'status': data.split(b'\r\n', 1)[0].decode(), 'error': error}


def scenario_logs_follow(v1, _args):
    resp = v1.read_namespaced_pod_log('ticker', 'default', follow=True, _preload_content=False)
    lines = []
    end = time.monotonic() + DEADLINE
    buf = b''
    for chunk in resp.stream(64):
        buf += chunk
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            lines.append(line.decode())
        if len(lines) >= 3 or time.monotonic() > end:
            break
    resp.release_conn()
    return {'lines': lines[:3]}


def scenario_watch(v1, _args):
    rv = v1.list_namespaced_pod('default').metadata.resource_version
    body = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'py-watched'},
            'spec': {'containers': [{'name': 'main', 'image': 'busybox', 'command': ['sleep', '1000']}]}}
    v1.create_namespaced_pod('default', body)
    v1.delete_namespaced_pod('py-watched', 'default')
    events = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, 'default', resource_version=rv, timeout_seconds=10):
        if ev['object'].metadata.name != 'py-watched':
            continue
        events.append(ev['type'])
        if ev['type'] == 'DELETED':
            w.stop()
    return {'events': events}


SCENARIOS = {
    'list': scenario_list,
    'returncode': scenario_returncode,
    'stdin': scenario_stdin,
    'tty-resize': scenario_tty_resize,
    'port-forward': scenario_port_forward,
    'logs-follow': scenario_logs_follow,
    'watch': scenario_watch,
}


def main():
    kubeconfig, name, *args = sys.argv[1:]
    print(json.dumps(SCENARIOS[name](core(kubeconfig), args)))


if __name__ == '__main__':
    main()
