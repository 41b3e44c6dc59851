"""Put a TensorFlow run on the device it asked for, and set up bf16 as the JSON says.

On Gaudi the bf16 JSON is handed to Habana's graph converter through
``TF_BF16_CONVERSION`` before the Habana module loads, as upstream does.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import tensorflow as tf

from bertfam.devices import Device, available_devices, choose_device, describe
from bertfam.errors import UserError
from bertfam.precision import load_bf16_config

log = logging.getLogger(__name__)


class Bf16UnsupportedError(UserError):
    """bf16 asked for where this release cannot honour it."""


def select_device(requested: str, bf16: Optional[str]) -> Device:
    if bf16 not in (None, "full", "basic"):
        load_bf16_config(bf16)  # a malformed file fails here, naming the problem
    if bf16 is not None:
        # Habana's converter reads the variable when its module loads, so set it first.
        os.environ["TF_BF16_CONVERSION"] = bf16
    device = choose_device("tensorflow", requested)
    log.info(describe("tensorflow", available_devices("tensorflow")))
    log.info("running on %s", device.kind)
    if device.kind == "cpu":
        tf.config.set_visible_devices([], "GPU")
    if bf16 is not None and device.kind != "hpu":
        raise Bf16UnsupportedError(
            f"bf16 ({bf16}) is converted by Habana's runtime on Gaudi; on {device.kind} this "
            "release runs fp32 only: drop --bf16_config_path and unset TF_BF16_CONVERSION"
        )
    return device
