"""Serialized `tf.train.Example`s for whole arrays at once, the bytes protobuf writes.

Building one protobuf message per record and serializing it costs more than creating
the pre-training instances does. The wire format of these records is small and fixed:

    Example   { features: Features = 1 }
    Features  { map<string, Feature> feature = 1 }   each entry { key = 1; value = 2 }
    Feature   { float_list = 2 | int64_list = 3 }     each { repeated value = 1 [packed] }

so a compiled loop writes every record's bytes straight from the feature arrays. The one
thing protobuf decides on its own is the order of the map's entries (its hash order,
not the order given); `entry_order` reads it once from a message protobuf serializes,
so the bytes equal ``tf.train.Example(...).SerializeToString()`` record for record (the
tests check them against Google's writer).
"""

from __future__ import annotations

import functools
from typing import Dict, List, Tuple

import numba
import numpy as np

_INT64_LIST, _FLOAT_LIST = 3, 2  # Feature's field numbers


@functools.cache
def entry_order(names: Tuple[str, ...]) -> List[str]:
    """The order protobuf serializes a Features map with these keys in."""
    import tensorflow as tf

    feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])) for name in names}
    data = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    return sorted(names, key=lambda name: data.index(b"\n" + bytes([len(name)]) + name.encode()))


def serialize_examples(arrays: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets): record i is ``bytes[offsets[i]:offsets[i + 1]]``. Float arrays
    become float_list features, integer arrays int64_list; each row is one record."""
    names = entry_order(tuple(arrays))
    count = len(next(iter(arrays.values())))
    columns = {name: arrays[name].reshape(count, -1) for name in names}
    is_float = [columns[name].dtype.kind == "f" for name in names]
    # One tuple per kind, each array as it is (no copy when already int64 / float32).
    ints = tuple(
        np.ascontiguousarray(columns[n], np.int64) for n, f in zip(names, is_float) if not f
    )
    floats = tuple(
        np.ascontiguousarray(columns[n], "<f4").view(np.uint32)
        for n, f in zip(names, is_float)
        if f
    )
    kinds = np.asarray([_FLOAT_LIST if f else _INT64_LIST for f in is_float], np.int64)
    slots, taken = [], {True: 0, False: 0}  # each feature's place in its kind's tuple
    for f in is_float:
        slots.append(taken[f])
        taken[f] += 1
    keys = [name.encode() for name in names]
    key_starts = np.concatenate([[0], np.cumsum([len(key) for key in keys])]).astype(np.int64)
    empty = (np.zeros((count, 0), np.int64),)
    return _encode(
        count,
        ints or empty,
        floats or (np.zeros((count, 0), np.uint32),),
        kinds,
        np.asarray(slots, np.int64),
        np.frombuffer(b"".join(keys), np.uint8),
        key_starts,
    )


@numba.njit(cache=True)
def _varint_size(value):
    value = np.uint64(value)  # negative int64s take ten bytes, as two's complement
    size = 1
    while value >= 128:
        value >>= np.uint64(7)
        size += 1
    return size


@numba.njit(cache=True)
def _put_varint(out, at, value):
    value = np.uint64(value)
    while value >= 128:
        out[at] = np.uint8((value & np.uint64(127)) | np.uint64(128))
        value >>= np.uint64(7)
        at += 1
    out[at] = np.uint8(value)
    return at + 1


@numba.njit(cache=True)
def _list_size(values, row, kind):
    """Bytes of the packed values of one feature of one record."""
    if kind == _FLOAT_LIST:
        return 4 * values.shape[1]
    size = 0
    for c in range(values.shape[1]):
        size += _varint_size(values[row, c])
    return size


@numba.njit(cache=True)
def _field_size(payload):
    """A length-delimited field: tag byte, length varint, payload."""
    return 1 + _varint_size(payload) + payload


@numba.njit(cache=True)
def _encode(rows, ints, floats, kinds, slots, keys, key_starts):
    features = len(kinds)
    sizes = np.zeros((rows, features, 4), np.int64)  # packed, list, feature, entry
    record_sizes = np.zeros(rows + 1, np.int64)  # offsets of the records
    contents = np.zeros(rows, np.int64)  # bytes of each Features message
    for r in range(rows):
        total = 0
        for f in range(features):
            if kinds[f] == _FLOAT_LIST:
                packed = _list_size(floats[slots[f]], r, kinds[f])
            else:
                packed = _list_size(ints[slots[f]], r, kinds[f])
            value_list = _field_size(packed)  # ...List { value = 1 }
            feature = _field_size(value_list)  # Feature { *_list }
            key = key_starts[f + 1] - key_starts[f]
            entry = _field_size(key) + _field_size(feature)
            sizes[r, f, 0] = packed
            sizes[r, f, 1] = value_list
            sizes[r, f, 2] = feature
            sizes[r, f, 3] = entry
            total += _field_size(entry)
        contents[r] = total
        record_sizes[r + 1] = record_sizes[r] + _field_size(total)  # Example { features }
    out = np.zeros(record_sizes[rows], np.uint8)
    for r in range(rows):
        at = record_sizes[r]
        out[at] = 0x0A  # Example.features
        at = _put_varint(out, at + 1, contents[r])
        for f in range(features):
            out[at] = 0x0A  # Features.feature (a map entry)
            at = _put_varint(out, at + 1, sizes[r, f, 3])
            out[at] = 0x0A  # entry.key
            key = key_starts[f + 1] - key_starts[f]
            at = _put_varint(out, at + 1, key)
            out[at : at + key] = keys[key_starts[f] : key_starts[f + 1]]
            at += key
            out[at] = 0x12  # entry.value
            at = _put_varint(out, at + 1, sizes[r, f, 2])
            out[at] = kinds[f] << 3 | 2  # Feature.int64_list or float_list
            at = _put_varint(out, at + 1, sizes[r, f, 1])
            out[at] = 0x0A  # List.value, packed
            at = _put_varint(out, at + 1, sizes[r, f, 0])
            if kinds[f] == _FLOAT_LIST:
                values = floats[slots[f]]
                for c in range(values.shape[1]):
                    bits = np.int64(values[r, c])
                    for b in range(4):
                        out[at + b] = np.uint8((bits >> (8 * b)) & 255)
                    at += 4
            else:
                values = ints[slots[f]]
                for c in range(values.shape[1]):
                    at = _put_varint(out, at, values[r, c])
    return out, record_sizes
