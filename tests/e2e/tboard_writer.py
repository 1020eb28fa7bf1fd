"""Writes TensorBoard event files with the standard library only (no tensorboard or torch).

A file holds TFRecord records (uint64 length, masked CRC-32C of the length, data, masked CRC-32C
of the data; little-endian), each an Event protocol buffer encoded here by hand: first
Event{wall_time, file_version: "brain.Event:2"}, then one
Event{wall_time, step, summary: {value: [{tag, simple_value}]}} per scalar, as torch's
SummaryWriter.add_scalar writes them.

    with EventFileWriter(log_dir) as w:
        w.add_scalar("loss", 0.5, step=10)

Run as a script to write a file for a test:
    python3 tboard_writer.py DIR TAG=VALUE@STEP ...
"""

import os
import socket
import struct
import sys
import time

_CRC_TABLE = []
for _i in range(256):
    _crc = _i
    for _ in range(8):
        _crc = (_crc >> 1) ^ (0x82F63B78 if _crc & 1 else 0)
    _CRC_TABLE.append(_crc)


def crc32c(data):
    """CRC-32C (Castagnoli) of bytes."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data):
    """One framed TFRecord holding data."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data +
            struct.pack("<I", masked_crc32c(data)))


def _varint(value):
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64 values take ten bytes, two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire_type):
    return _varint((field << 3) | wire_type)


def _double(field, value):  # wire type 1: 64-bit
    return _key(field, 1) + struct.pack("<d", value)


def _float(field, value):  # wire type 5: 32-bit
    return _key(field, 5) + struct.pack("<f", value)


def _int(field, value):  # wire type 0: varint
    return _key(field, 0) + _varint(value)


def _bytes(field, value):  # wire type 2: length-delimited
    return _key(field, 2) + _varint(len(value)) + value


def encode_event(wall_time, step=0, file_version=None, scalars=()):
    """Event (tensorflow/core/util/event.proto): wall_time 1, step 2, file_version 3,
    summary 5; Summary.value 1; Value.tag 1, Value.simple_value 2."""
    out = _double(1, wall_time)
    if step:
        out += _int(2, step)
    if file_version is not None:
        out += _bytes(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _bytes(1, _bytes(1, tag.encode()) + _float(2, value)) for tag, value in scalars)
        out += _bytes(5, summary)
    return out


class EventFileWriter:
    """Appends scalars to a new event file.

    path: a log directory (created if missing), in which the file is named like TensorBoard's,
    events.out.tfevents.<time>.<host>.<pid>.<n>; or, when its last component contains
    "tfevents", the file itself. The file path is in .path.
    """

    _count = 0

    def __init__(self, path):
        if "tfevents" in os.path.basename(path):
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.path = path
        else:
            os.makedirs(path, exist_ok=True)
            EventFileWriter._count += 1
            name = "events.out.tfevents.%d.%s.%d.%d" % (
                int(time.time()), socket.gethostname(), os.getpid(), EventFileWriter._count)
            self.path = os.path.join(path, name)
        self._file = open(self.path, "ab")
        self._file.write(tfrecord(encode_event(time.time(), file_version="brain.Event:2")))
        self.flush()

    def add_scalar(self, tag, value, step, wall_time=None):
        if wall_time is None:
            wall_time = time.time()
        self._file.write(
            tfrecord(encode_event(wall_time, step=int(step), scalars=[(tag, float(value))])))

    def flush(self):
        self._file.flush()

    def close(self):
        if not self._file.closed:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: tboard_writer.py DIR TAG=VALUE@STEP ...\n")
        return 2
    with EventFileWriter(argv[1]) as writer:
        for item in argv[2:]:
            tag, rest = item.split("=", 1)
            value, step = rest.split("@", 1)
            writer.add_scalar(tag, float(value), int(step), wall_time=1700000000.0 + int(step))
        print(writer.path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
