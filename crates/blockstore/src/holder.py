"""Stratus RBD holder: a real Ceph client standing in for a VM's disk.

Run as: python3 -c <this script> POOL IMAGE LINGER_SECONDS [MARKER]   (uses $CEPH_CONF)

MARKER is not used here: a unique argument by which the owner finds this
process again (after the owner restarted) and checks it before signalling it.

It connects with librados, opens POOL/IMAGE with librbd (a real watcher; the
first write takes the exclusive lock), prints one line and then serves
commands on stdin, answering each with one line on stdout:

  start-up                          -> "READY <client address> <instance id>"
                                       or "ERROR <errno> <message>" (then exits 1)
  "write <offset> <len>\\n" + <len> raw bytes
                                    -> "OK" or "FAILED <errno> <message>"
  "close\\n"                        -> closes the image, "CLOSED", exits 0

Every write is followed by a flush and the librbd cache is off, so "OK" means
the OSD acknowledged the data: a fenced (blocklisted) client gets
"FAILED 108 ..." (ESHUTDOWN, librbd's EBLOCKLISTED).

On end of input (its owner went away without "close") it keeps the image open
for LINGER_SECONDS more (0: close at once), like a VM that outlives its host
agent, writing on its own when STRATUS_HOLDER_LOG_DIR is set (see zombie());
SIGTERM ends it earlier.
"""
import os
import signal
import sys
import time

EIO = 5


def errno_of(e):
    n = getattr(e, "errno", None)
    return n if isinstance(n, int) and n > 0 else EIO


def say(line):
    try:
        sys.stdout.write(line.replace("\n", " ") + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass


def zombie(img, image, linger):
    """Outlive the owner like a VM whose host agent died: keep the image open
    and, if STRATUS_HOLDER_LOG_DIR is set, keep writing 4 KiB every 200 ms,
    logging "OK <unix ms>" or "FAILED <errno> <unix ms>" per write to
    <dir>/<image>.log, so a test can count the bytes written after a fence."""
    log_dir = os.environ.get("STRATUS_HOLDER_LOG_DIR")
    deadline = time.time() + linger
    if not log_dir:
        time.sleep(linger)
        return
    path = os.path.join(log_dir, image + ".log")
    block = b"z" * 4096
    while time.time() < deadline:
        try:
            img.write(block, 0)
            img.flush()
            result = "OK"
        except Exception as e:  # errno 108 once blocklisted
            result = f"FAILED {errno_of(e)}"
        try:
            with open(path, "a") as f:
                f.write(f"{result} {int(time.time() * 1000)}\n")
        except OSError:
            pass
        time.sleep(0.2)


def main():
    pool, image, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        import rados
        import rbd
    except ImportError as e:
        say(f"ERROR {EIO} python3-rados/python3-rbd missing for {sys.executable}: {e}")
        return 1
    cluster = ioctx = img = None
    try:
        cluster = rados.Rados(conffile=os.environ.get("CEPH_CONF", ""), conf={"rbd_cache": "false"})
        cluster.connect(timeout=15)
        ioctx = cluster.open_ioctx(pool)
        img = rbd.Image(ioctx, image)
    except Exception as e:  # rbd.ImageNotFound (2), rados.ObjectNotFound (pool), timeouts, ...
        say(f"ERROR {errno_of(e)} {type(e).__name__}: {e}")
        return 1
    say(f"READY {cluster.get_addrs()} {cluster.get_instance_id()}")
    stdin = sys.stdin.buffer
    try:
        while True:
            line = stdin.readline(256)
            if not line:
                if linger > 0:
                    zombie(img, image, linger)
                return 0
            parts = line.split()
            if parts == [b"close"]:
                img.close()
                img = None
                say("CLOSED")
                return 0
            if len(parts) == 3 and parts[0] == b"write":
                offset, length = int(parts[1]), int(parts[2])
                data = stdin.read(length)
                if len(data) != length:
                    return 0
                try:
                    img.write(data, offset)
                    img.flush()
                    say("OK")
                except Exception as e:  # rbd.ConnectionShutdown: errno 108 once blocklisted
                    say(f"FAILED {errno_of(e)} {type(e).__name__}: {e}")
                continue
            say(f"FAILED 22 unknown command {line[:64]!r}")
    finally:
        for closing in (img, ioctx):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                pass
        try:
            cluster.shutdown()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
