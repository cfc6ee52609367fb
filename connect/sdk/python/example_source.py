#!/usr/bin/python3
"""A Sluice source connector plugin in Python: proof that the protocol in
connect/proto/connectv1/README.md is enough to write a plugin without Go.

It needs grpcio and protobuf (Debian: python3-grpcio python3-protobuf) and
connect_pb2.py next to it, generated with

    protoc --python_out=DIR -I connect/proto/connectv1 connect.proto

The connector, example.PySource (alias PySource), emits `count` records
(default unbounded) to `topic` with values b"py-<n>" and source offsets
{"n": n}, resuming after the offsets the worker says are committed.

It answers Poll with records as messages (the packed form of README.md is
optional) and, when the worker asks for positions per batch, sends the
batch's newest position once instead of one per record.
"""

import base64
import datetime
import json
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_pb2 as pb  # noqa: E402

MAGIC_KEY = "SLUICE_CONNECT_PLUGIN"
MAGIC_VALUE = "3f1c0e0a-connect-v1"
PROTOCOL_VERSION = 1
CLASS = "example.PySource"


def log(level, msg, **fields):
    """One hclog-shaped JSON line on stderr: the worker re-logs it."""
    fields.update({"@level": level, "@message": msg})
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


# --- automatic mutual TLS ---------------------------------------------------

def make_cert():
    """A self-signed certificate usable as server, client and root, like
    go-plugin's: returns (cert PEM, key PEM, cert DER). Uses the
    cryptography package when present, else the openssl command (forced by
    EXAMPLE_CERT_TOOL=openssl, for the tests)."""
    if os.environ.get("EXAMPLE_CERT_TOOL") == "openssl":
        return make_cert_openssl()
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        return make_cert_openssl()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                     content_commitment=False, data_encipherment=False, key_agreement=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


def make_cert_openssl():
    import subprocess
    with tempfile.TemporaryDirectory() as d:
        k, c = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", k, "-out", c, "-days", "365", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
             "-addext", "extendedKeyUsage=serverAuth,clientAuth"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "x509", "-in", c, "-outform", "DER"], check=True,
                             stdout=subprocess.PIPE).stdout
        return open(c, "rb").read(), open(k, "rb").read(), der


# --- services ---------------------------------------------------------------

def position(n):
    """The source position of record n; partition JSON in canonical form
    (sorted keys, no whitespace)."""
    return pb.SourceOffset(
        partition_json=json.dumps({"source": "py"}, sort_keys=True, separators=(",", ":")).encode(),
        offset_json=json.dumps({"n": n}).encode())


def unary(fn, req_cls, resp_cls):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=req_cls.FromString, response_serializer=resp_cls.SerializeToString)


def raw_unary(fn):
    """A handler for go-plugin's own services, whose messages we encode by
    hand instead of generating their modules."""
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=lambda b: b,
                                               response_serializer=lambda b: b)


class Task:
    def __init__(self, req):
        props = req.config.props
        self.topic = props.get("topic", "py")
        self.count = int(props.get("count", "-1"))
        self.generation = req.generation
        self.next = 0
        self.seq = 0
        self.stopped = threading.Event()
        for pos in req.known_offsets:
            if pos.offset_json:
                self.next = max(self.next, json.loads(pos.offset_json).get("n", -1) + 1)


class Plugin:
    def __init__(self, shutdown):
        self.tasks = {}
        self.lock = threading.Lock()
        self.shutdown = shutdown

    # ConnectorPlugin
    def describe(self, req, ctx):
        d = pb.ConnectorDescriptor(type=pb.CONNECTOR_TYPE_SOURCE, class_name=CLASS, aliases=["PySource"],
                                   version="0.1")
        d.config.add(name="topic", type="STRING", required=True, importance="HIGH",
                     documentation="Topic to write to.")
        d.config.add(name="count", type="LONG", has_default=True, default_value="-1", importance="LOW")
        return pb.DescribeResponse(connectors=[d])

    def validate(self, req, ctx):
        resp = pb.ValidateResponse()
        v = resp.values.add(name="topic", visible=True)
        if req.config.props.get("topic"):
            v.value, v.has_value = req.config.props["topic"], True
        else:
            v.errors.append('Missing required configuration "topic" which has no default value.')
        return resp

    def task_configs(self, req, ctx):
        return pb.TaskConfigsResponse(tasks=[pb.Config(props=dict(req.config.props))])

    def alter_offsets(self, req, ctx):
        return pb.AlterOffsetsResponse(managed_externally=False)

    # SourceTask
    def task(self, tid, generation, ctx):
        with self.lock:
            t = self.tasks.get((tid.connector, tid.task))
        if t is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "task %s-%d is not started" % (tid.connector, tid.task))
        if t.generation != generation:
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "stale generation %d" % generation)
        return t

    def start(self, req, ctx):
        with self.lock:
            self.tasks[(req.task.connector, req.task.task)] = Task(req)
        log("info", "task started", task=req.task.task)
        return pb.StartResponse()

    def poll(self, req, ctx):
        t = self.task(req.task, req.generation, ctx)
        max_records = req.max_records or 1000
        max_bytes = req.max_bytes or (4 << 20)
        resp, size = pb.PollResponse(), 0
        while len(resp.records) < max_records and (t.count < 0 or t.next < t.count):
            value = b"py-%d" % t.next
            if resp.records and size + len(value) > max_bytes:
                break
            size += len(value)
            rec = resp.records.add(topic=t.topic, partition=-1, timestamp_ms=-1, value=pb.Data(raw=value))
            if not req.batch_positions:
                rec.position.CopyFrom(position(t.next))
            t.next += 1
        if resp.records:
            t.seq += 1
            resp.batch_seq = t.seq
            # One source partition: its newest position is the last record's.
            resp.positions.append(position(t.next - 1))
        else:  # long poll: nothing more, wait out max_wait (or stop)
            t.stopped.wait(req.max_wait_ms / 1000.0)
        return resp

    def commit(self, req, ctx):
        self.task(req.task, req.generation, ctx)
        return pb.CommitResponse()

    def stop(self, req, ctx):
        t = self.task(req.task, req.generation, ctx)
        t.stopped.set()
        with self.lock:
            self.tasks.pop((req.task.connector, req.task.task), None)
        return pb.StopResponse()

    # go-plugin's services
    def health_check(self, req, ctx):
        return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

    def controller_shutdown(self, req, ctx):
        self.shutdown.set()
        return b""  # Empty

    def handlers(self):
        svc = "sluice.connect.v1."
        return [
            grpc.method_handlers_generic_handler(svc + "ConnectorPlugin", {
                "Describe": unary(self.describe, pb.DescribeRequest, pb.DescribeResponse),
                "Validate": unary(self.validate, pb.ValidateRequest, pb.ValidateResponse),
                "TaskConfigs": unary(self.task_configs, pb.TaskConfigsRequest, pb.TaskConfigsResponse),
                "AlterOffsets": unary(self.alter_offsets, pb.AlterOffsetsRequest, pb.AlterOffsetsResponse),
            }),
            grpc.method_handlers_generic_handler(svc + "SourceTask", {
                "Start": unary(self.start, pb.SourceStartRequest, pb.StartResponse),
                "Poll": unary(self.poll, pb.PollRequest, pb.PollResponse),
                "Commit": unary(self.commit, pb.CommitRequest, pb.CommitResponse),
                "Stop": unary(self.stop, pb.StopRequest, pb.StopResponse),
            }),
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": raw_unary(self.health_check)}),
            grpc.method_handlers_generic_handler("plugin.GRPCController",
                                                 {"Shutdown": raw_unary(self.controller_shutdown)}),
        ]


def main():
    if os.environ.get(MAGIC_KEY) != MAGIC_VALUE:
        sys.stderr.write("This is a Sluice connector plugin: put it in a directory listed in plugin.path.\n")
        sys.exit(1)
    versions = [int(v) for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "1").split(",") if v]
    if PROTOCOL_VERSION not in versions:
        sys.stderr.write("worker speaks protocol versions %s, this plugin only %d\n" % (versions, PROTOCOL_VERSION))
        sys.exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's business

    shutdown = threading.Event()
    parent = os.getppid()

    def watch_parent():
        while not shutdown.wait(1.0):
            if os.getppid() != parent:
                log("error", "worker went away; exiting")
                shutdown.set()
    threading.Thread(target=watch_parent, daemon=True).start()

    cert_pem, key_pem, cert_der = make_cert()
    client_cert = os.environ["PLUGIN_CLIENT_CERT"].encode()
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert,
                                        require_client_auth=True)
    sock_dir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    sock = os.path.join(sock_dir, "py-%d.sock" % os.getpid())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 2**31 - 1),
                                  ("grpc.max_send_message_length", 2**31 - 1)])
    for h in Plugin(shutdown).handlers():
        server.add_generic_rpc_handlers((h,))
    server.add_secure_port("unix:" + sock, creds)
    server.start()

    cert_b64 = base64.b64encode(cert_der).decode().rstrip("=")
    sys.stdout.write("1|%d|unix|%s|grpc|%s\n" % (PROTOCOL_VERSION, sock, cert_b64))
    sys.stdout.flush()
    log("info", "python plugin serving", socket=sock)

    shutdown.wait()
    time.sleep(0.1)  # let the Shutdown answer go out
    server.stop(0)
    try:
        os.unlink(sock)
    except OSError:
        pass


if __name__ == "__main__":
    main()
