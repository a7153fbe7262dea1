"""One trainer per run directory: an OS file lock held for the run's life (docs/design.md §4).

A scheduler that restarts a job whose first copy is still alive would otherwise run two
trainers on one `model_dir`: both write `ckpt-N` under the same names (a checkpoint's index
and data could come from different processes) and both write TensorBoard events. The chief
takes an exclusive `flock` on `model_dir/.train.lock` before it reads any data; the kernel
releases it when the process ends, however it ends (a SIGKILL too), so no stale lock is left
to clean up. The file keeps the holder's host, process id and start time for the message a
second trainer prints.

Readers (`evaluate`, `sample`, `export`) take no lock: they read checkpoints, which the
manager publishes only once written.

Limits: `flock` holds between processes of one machine and on local file systems; on a
network file system (NFS, some FUSE mounts) it may be advisory per client or not enforced,
and remote paths (gs://) have no locks at all: there, a warning says the run is unguarded.
"""

import datetime
import errno
import fcntl
import json
import logging
import os
import socket

log = logging.getLogger("dctformer_tf.train")

LOCK_FILE = ".train.lock"


class RunLockedError(OSError):
    """Another process is training into the same `model_dir`."""


class RunLock:
    """An exclusive lock on a run directory while in a `with` block.

    Args:
      model_dir: str. The run directory (created beforehand).
    Raises (on entering):
      RunLockedError naming the holder's host and process id, and what to do.
    """

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = os.path.join(model_dir, LOCK_FILE)
        self._file = None

    def __enter__(self) -> "RunLock":
        if "://" in self.model_dir:
            log.warning("%s is not a local path: no lock guards it against a second trainer",
                        self.model_dir)
            return self
        handle = open(self.path, "a+")  # never truncated before the lock is ours
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise RunLockedError(
                f"{self.model_dir} is being trained by {holder_text(self.path)}; a second "
                "trainer would mix its checkpoints and logs. Wait for that run to end, stop "
                "it, or train into another --model_dir") from None
        handle.seek(0)
        handle.truncate()
        json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                   "since": datetime.datetime.now().isoformat(timespec="seconds")}, handle)
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def holder_text(path: str) -> str:
    """'process 123 on host h (since ...)', from the lock file, or what is known."""
    try:
        with open(path) as f:
            holder = json.load(f)
        return (f"process {holder['pid']} on host {holder['host']} (since "
                f"{holder['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return f"another process (it holds {path})"
