"""Put a TensorFlow run on the device it asked for, and set up bf16 as the JSON says.

On Gaudi the bf16 JSON is handed to Habana's graph converter through
``TF_BF16_CONVERSION`` before the Habana module loads, as upstream does; elsewhere the
model casts op by op as the same JSON says (`bertfam.tf.bf16`).
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import tensorflow as tf

from bertfam.devices import Device, available_devices, choose_device, describe
from bertfam.precision import refuse_habana_mode_off_gaudi
from bertfam.tf.bf16 import FP32, Bf16Policy

log = logging.getLogger(__name__)


def select_device(requested: str, bf16: Optional[str]) -> Device:
    if bf16 is not None:
        # Habana's converter reads the variable when its module loads, so set it first.
        os.environ["TF_BF16_CONVERSION"] = bf16
    device = choose_device("tensorflow", requested)
    log.info(describe("tensorflow", available_devices("tensorflow")))
    log.info("running on %s", device.kind)
    if device.kind == "cpu":
        tf.config.set_visible_devices([], "GPU")
    return device


def bf16_policy(device: Device, bf16: Optional[str]) -> Bf16Policy:
    """How the model itself should cast: not at all on Gaudi (Habana's pass converts the
    graph from TF_BF16_CONVERSION), op by op from the JSON on CPUs and GPUs."""
    if bf16 is None or device.kind == "hpu":
        return FP32
    refuse_habana_mode_off_gaudi(bf16, device.kind)
    log.info("bf16 on %s as %s says", device.kind, bf16)
    return Bf16Policy.from_setting(bf16)
