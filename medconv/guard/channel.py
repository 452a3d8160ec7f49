"""The pipe between a process and its helper: pickled messages over a Unix socket, big buffers as shared memory."""

from __future__ import annotations

import mmap
import os
import pickle
import select
import socket
import struct
import tempfile
from typing import Any

#: Buffers (array data, bytes) at least this large travel as shared memory, not through the pipe:
#: a 150 MB volume costs one copy (~0.05 s) instead of ~0.6 s of pipe transfer each way.
SHARED_BUFFER_BYTES = 1 << 20
#: At most this many shared buffers per message (the rest go through the pipe).
MAX_SHARED_BUFFERS = 64

_HEADER = struct.Struct("<QI")  # payload bytes, shared buffers that came with it


def _shared_buffer(data: memoryview) -> int:
    """A file descriptor of anonymous shared memory holding ``data`` (memfd; an unlinked temp file elsewhere)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("medconv-guard", os.MFD_CLOEXEC)
    else:
        handle = tempfile.TemporaryFile()
        fd = os.dup(handle.fileno())
        handle.close()
    try:
        view = data.cast("B")
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])
    except BaseException:
        os.close(fd)
        raise
    return fd


class Channel:
    """Pickled messages over a Unix socket; large buffers (protocol 5) travel as shared memory.

    A large numpy array is pickled out of band: its bytes are copied once into a
    memfd whose descriptor goes with the message; the receiver maps it and the
    unpickled array uses that mapping without another copy.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def poll(self, timeout: float | None) -> bool:
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def send(self, obj: Any) -> None:
        shared: list[pickle.PickleBuffer] = []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            if buffer.raw().nbytes < SHARED_BUFFER_BYTES or len(shared) >= MAX_SHARED_BUFFERS:
                return True  # in band
            shared.append(buffer)
            return False

        payload = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
        fds = [_shared_buffer(buffer.raw()) for buffer in shared]
        try:
            socket.send_fds(self.sock, [_HEADER.pack(len(payload), len(fds))], fds)
            self.sock.sendall(payload)
        finally:
            for fd in fds:
                os.close(fd)

    def recv(self) -> Any:
        head, fds, _, _ = socket.recv_fds(self.sock, _HEADER.size, MAX_SHARED_BUFFERS)
        try:
            if not head:
                raise EOFError("the other side closed the pipe")
            head += self._exactly(_HEADER.size - len(head))
            size, count = _HEADER.unpack(head)
            payload = self._exactly(size)
            buffers = []
            for fd in fds[:count]:
                length = os.fstat(fd).st_size
                buffers.append(mmap.mmap(fd, length) if length else b"")
        finally:
            for fd in fds:
                os.close(fd)
        return pickle.loads(payload, buffers=buffers)

    def _exactly(self, size: int) -> bytes:
        data = bytearray(size)
        view = memoryview(data)
        got = 0
        while got < size:
            n = self.sock.recv_into(view[got:])
            if not n:
                raise EOFError("the other side closed the pipe")
            got += n
        return bytes(data) if size < SHARED_BUFFER_BYTES else data


