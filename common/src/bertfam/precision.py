"""The upstream bf16 JSON (``bf16_config/<model>.json``): load, validate, and ask it questions.

The file Habana's TensorFlow models ship (and ``TF_BF16_CONVERSION`` points at) has five
keys (Habana's "TensorFlow Mixed Precision Training" describes them)::

    allowlist                  op types always computed in bf16 ("allow_list" accepted too)
    conditional_list           op types in bf16 when at least one neighbour is
    strict_conditional_list    op types in bf16 when all their float inputs are
    non_convertible_exceptions [name_regex, op_type] pairs forced to stay fp32
    convertible_exceptions     [name_regex, op_type] pairs forced to bf16

Ops in no list stay fp32. An empty op type in an exception matches every op. A name
regex must match the whole node name (the upstream patterns carry their own ``.*``).
Non-convertible exceptions win over everything, so ``KEEP_FP32_PRECISION`` in a name
always keeps an op in fp32.
"""

from __future__ import annotations

import enum
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Iterable, Optional, Sequence, Tuple, Union

from bertfam.errors import UserError

LIST_KEYS = ("allowlist", "conditional_list", "strict_conditional_list")
EXCEPTION_KEYS = ("non_convertible_exceptions", "convertible_exceptions")
_KEY_ALIASES = {"allow_list": "allowlist"}


class PrecisionConfigError(UserError):
    """The bf16 JSON is unreadable, malformed or names something impossible."""


class Decision(enum.Enum):
    BF16 = "bf16"
    FP32 = "fp32"
    FOLLOW_ANY = "follow-any"  # conditional_list: bf16 when any neighbour is
    FOLLOW_ALL = "follow-all"  # strict_conditional_list: bf16 when all inputs are


@dataclass(frozen=True)
class OpException:
    name_pattern: re.Pattern[str]
    op_type: str  # "" matches every op type

    def matches(self, op_type: str, op_name: str) -> bool:
        return (not self.op_type or self.op_type == op_type) and bool(
            self.name_pattern.fullmatch(op_name)
        )


@dataclass(frozen=True)
class Bf16Config:
    allowlist: FrozenSet[str]
    conditional_list: FrozenSet[str]
    strict_conditional_list: FrozenSet[str]
    non_convertible_exceptions: Tuple[OpException, ...]
    convertible_exceptions: Tuple[OpException, ...]
    source: str = "<memory>"

    def decide(self, op_type: str, op_name: str) -> Decision:
        """What the config says about one op, before looking at its neighbours."""
        if any(e.matches(op_type, op_name) for e in self.non_convertible_exceptions):
            return Decision.FP32
        if any(e.matches(op_type, op_name) for e in self.convertible_exceptions):
            return Decision.BF16
        if op_type in self.allowlist:
            return Decision.BF16
        if op_type in self.conditional_list:
            return Decision.FOLLOW_ANY
        if op_type in self.strict_conditional_list:
            return Decision.FOLLOW_ALL
        return Decision.FP32

    def computes_in_bf16(
        self, op_type: str, op_name: str, neighbours_in_bf16: Sequence[bool] = ()
    ) -> bool:
        """Does this op compute in bf16, given which of its neighbours do?

        `neighbours_in_bf16` are the decisions already taken for the op's float inputs
        (and, for conditional ops, its consumers). An op with no such neighbours does
        not follow anything, so a conditional op alone stays fp32.
        """
        decision = self.decide(op_type, op_name)
        if decision is Decision.FOLLOW_ANY:
            return any(neighbours_in_bf16)
        if decision is Decision.FOLLOW_ALL:
            return bool(neighbours_in_bf16) and all(neighbours_in_bf16)
        return decision is Decision.BF16


def load_bf16_config(path: str) -> Bf16Config:
    """Read and validate a bf16 JSON; every problem is a `PrecisionConfigError` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise PrecisionConfigError(f"bf16 config {path}: no such file") from None
    except json.JSONDecodeError as error:
        raise PrecisionConfigError(
            f"bf16 config {path}: not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PrecisionConfigError(f"bf16 config {path}: cannot read it ({error})") from None
    return parse_bf16_config(raw, source=path)


def parse_bf16_config(raw: object, source: str = "<memory>") -> Bf16Config:
    def fail(problem: str) -> PrecisionConfigError:
        return PrecisionConfigError(f"bf16 config {source}: {problem}")

    if not isinstance(raw, dict):
        raise fail(f"the top level must be a JSON object, not {type(raw).__name__}")
    fields: dict = {}
    for key, value in raw.items():
        canonical = _KEY_ALIASES.get(key, key)
        if canonical not in LIST_KEYS + EXCEPTION_KEYS:
            known = ", ".join(LIST_KEYS + EXCEPTION_KEYS)
            raise fail(f"unknown key {key!r} (known keys: {known}; 'allow_list' also accepted)")
        if canonical in fields:
            raise fail(f"{key!r} repeats {canonical!r}: give the allowlist once")
        if canonical in LIST_KEYS:
            fields[canonical] = frozenset(_op_types(value, key, fail))
        else:
            fields[canonical] = tuple(_exceptions(value, key, fail))
    for key in LIST_KEYS:
        fields.setdefault(key, frozenset())
    for key in EXCEPTION_KEYS:
        fields.setdefault(key, ())
    return Bf16Config(source=source, **fields)


def _op_types(value: object, key: str, fail) -> Iterable[str]:
    if not isinstance(value, list):
        raise fail(f"{key!r} must be a list of op type names, not {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise fail(f"{key}[{index}] must be a non-empty op type name, not {item!r}")
        yield item


def _exceptions(value: object, key: str, fail) -> Iterable[OpException]:
    if not isinstance(value, list):
        raise fail(f"{key!r} must be a list of [name_regex, op_type] pairs")
    for index, item in enumerate(value):
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)
        ):
            raise fail(
                f"{key}[{index}] must be a [name_regex, op_type] pair of strings, not {item!r}"
            )
        pattern, op_type = item
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise fail(f"{key}[{index}]: bad regex {pattern!r} ({error})") from None
        yield OpException(compiled, op_type)


# TF_BF16_CONVERSION values that are not a path.
_BF16_DISABLED = {"", "0", "false"}
_BF16_FULL = {"1", "true", "full"}
# Settings only Habana's graph converter understands: no op list to apply elsewhere.
HABANA_BF16_MODES = ("full", "basic")


def refuse_habana_mode_off_gaudi(setting: Optional[str], where: str) -> None:
    """A resolved bf16 setting that is one of Habana's modes, for a run `where` (a device,
    or "this run") that is not on Gaudi: one line asking for the JSON instead."""
    if setting in HABANA_BF16_MODES:
        raise PrecisionConfigError(
            f"TF_BF16_CONVERSION={setting} is a mode of Habana's converter and {where} is not "
            "Gaudi: give the JSON instead (--bf16_config_path=bf16_config/<model>.json)"
        )


def bf16_setting(flag_value: Optional[str], environ_value: Optional[str]) -> Optional[str]:
    """Combine ``--bf16_config_path`` with ``TF_BF16_CONVERSION``.

    Returns None (fp32), "full", "basic", or the path of a bf16 JSON. The flag wins
    over the environment variable when both are given, as upstream's scripts overwrite
    the variable from the flag.
    """
    # An empty flag is the flag's default, not a request to disable bf16.
    for value in (flag_value or None, environ_value):
        if value is None:
            continue
        lowered = value.strip().lower()
        if lowered in _BF16_DISABLED:
            return None
        if lowered in _BF16_FULL:
            return "full"
        if lowered == "basic":
            return "basic"
        if not os.path.isfile(value):
            raise PrecisionConfigError(
                f"bf16 setting {value!r} is neither a JSON file nor one of 0, 1, full, basic, false"
            )
        return value
    return None


# -- PyTorch HMP op lists ----------------------------------------------------------------

_OP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class OpListError(UserError):
    """An op-list file is missing or holds something that is not an op name."""


def read_op_list(path: Union[str, Path]) -> FrozenSet[str]:
    """Op names, one a line; blank lines and lines starting with # or // are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise OpListError(f"op list {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OpListError(f"op list {path}: cannot read it ({error})") from None
    ops = set()
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith(("#", "//")):
            continue
        if not _OP_NAME.match(name):
            raise OpListError(f"op list {path}, line {number}: {name!r} is not an op name")
        ops.add(name)
    return frozenset(ops)
