"""TensorBoard scalars written without TensorFlow, torch or tensorboardX.

An event file is TFRecord framing around `Event` protocol buffers: each record is its
length (uint64, little-endian), the masked CRC-32C of those 8 bytes, the bytes, then the
masked CRC-32C of the bytes. The first event names the format (``brain.Event:2``); each
scalar is an event with its step and one ``Summary.Value`` (tag, ``simple_value``).

Written by hand because it is this small: tensorboardX imports torch whenever torch is
installed (seconds in every TensorFlow process), and TensorFlow's own writer is not
available to PyTorch runs. TensorBoard's own reader checks these files in the tests.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Union

FILE_VERSION = b"brain.Event:2"


def _crc32c_table() -> list:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's mask: rotate right by 15 bits and add a constant, modulo 2**32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= 0xFFFFFFFFFFFFFFFF  # int64 fields: two's complement, as protobuf encodes them
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def event(wall_time: float, step: int, *, file_version: bytes = b"", scalar=None) -> bytes:
    """An `Event` message: wall_time (1, double), step (2, int64), file_version (3) or
    summary (5) holding one value: tag (1) and simple_value (2, float)."""
    message = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version:
        message += _length_delimited(3, file_version)
    if scalar is not None:
        tag, value = scalar
        summary_value = _length_delimited(1, tag.encode()) + _varint(2 << 3 | 5)
        summary_value += struct.pack("<f", value)
        message += _length_delimited(5, _length_delimited(1, summary_value))
    return message


class EventFileWriter:
    """Appends scalars to a new ``events.out.tfevents.<time>.<host>`` in `directory`,
    flushed after every call, so a killed run keeps what it logged."""

    def __init__(self, directory: Union[str, Path]):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = directory / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
        # Closed in close(); a writer lives as long as its run.
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._write(event(now, 0, file_version=FILE_VERSION))

    def add_scalars(self, step: int, scalars: dict) -> None:
        now = time.time()
        for tag, value in scalars.items():
            self._file.write(tfrecord(event(now, step, scalar=(tag, float(value)))))
        self._file.flush()

    def _write(self, message: bytes) -> None:
        self._file.write(tfrecord(message))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
