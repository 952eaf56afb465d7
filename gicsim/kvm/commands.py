"""ITS command encodings (GIC architecture spec §6.3, KVM's its_cmd_* field extractors).

A command is 32 bytes: four little-endian u64 words DW0..DW3.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

GITS_CMD_MOVI = 0x01
GITS_CMD_INT = 0x03
GITS_CMD_CLEAR = 0x04
GITS_CMD_SYNC = 0x05
GITS_CMD_MAPD = 0x08
GITS_CMD_MAPC = 0x09
GITS_CMD_MAPTI = 0x0A
GITS_CMD_MAPI = 0x0B
GITS_CMD_INV = 0x0C
GITS_CMD_INVALL = 0x0D
GITS_CMD_MOVALL = 0x0E
GITS_CMD_DISCARD = 0x0F

OPCODE_NAMES = {
    GITS_CMD_MOVI: "MOVI",
    GITS_CMD_INT: "INT",
    GITS_CMD_CLEAR: "CLEAR",
    GITS_CMD_SYNC: "SYNC",
    GITS_CMD_MAPD: "MAPD",
    GITS_CMD_MAPC: "MAPC",
    GITS_CMD_MAPTI: "MAPTI",
    GITS_CMD_MAPI: "MAPI",
    GITS_CMD_INV: "INV",
    GITS_CMD_INVALL: "INVALL",
    GITS_CMD_MOVALL: "MOVALL",
    GITS_CMD_DISCARD: "DISCARD",
}
ITS_CMD_SIZE = 32
_CMD = struct.Struct("<4Q")


def _field(word: int, shift: int, size: int) -> int:
    return (word >> shift) & ((1 << size) - 1)


class ItsCmd(NamedTuple):
    """The decoded fields KVM extracts (``its_cmd_get_*``)."""

    opcode: int
    devid: int  # DW0[63:32]
    eventid: int  # DW1[31:0]
    size: int  # DW1[4:0] (MAPD: EventID bits - 1)
    pintid: int  # DW1[63:32]
    icid: int  # DW2[15:0]
    ittaddr: int  # DW2[51:8] << 8
    target_addr: int  # DW2[47:16] (RDbase = vCPU id, GITS_TYPER.PTA = 0)
    valid: bool  # DW2[63]
    target_addr2: int  # DW3[47:16] (MOVALL RDbase2)

    @property
    def name(self) -> str:
        return OPCODE_NAMES.get(self.opcode, f"UNKNOWN_{self.opcode:#04x}")


def decode_cmd(raw: bytes) -> ItsCmd:
    dw0, dw1, dw2, dw3 = _CMD.unpack(raw)
    return ItsCmd(
        dw0 & 0xFF,
        dw0 >> 32,
        dw1 & 0xFFFF_FFFF,
        dw1 & 0x1F,
        dw1 >> 32,
        dw2 & 0xFFFF,
        _field(dw2, 8, 44) << 8,
        _field(dw2, 16, 32),
        bool(dw2 >> 63),
        _field(dw3, 16, 32),
    )


def encode(dw0: int, dw1: int = 0, dw2: int = 0, dw3: int = 0) -> bytes:
    return _CMD.pack(dw0, dw1, dw2, dw3)


def mapd(devid: int, itt_addr: int, num_eventid_bits: int, valid: bool = True) -> bytes:
    return encode(
        GITS_CMD_MAPD | devid << 32,
        (num_eventid_bits - 1) & 0x1F if valid else 0,
        (int(valid) << 63) | (((itt_addr >> 8) & ((1 << 44) - 1)) << 8),
    )


def mapc(icid: int, rdbase: int, valid: bool = True) -> bytes:
    return encode(GITS_CMD_MAPC, 0, (int(valid) << 63) | (rdbase & 0xFFFF_FFFF) << 16 | icid)


def mapti(devid: int, eventid: int, pintid: int, icid: int) -> bytes:
    return encode(GITS_CMD_MAPTI | devid << 32, eventid | pintid << 32, icid)


def mapi(devid: int, eventid: int, icid: int) -> bytes:
    return encode(GITS_CMD_MAPI | devid << 32, eventid, icid)


def movi(devid: int, eventid: int, icid: int) -> bytes:
    return encode(GITS_CMD_MOVI | devid << 32, eventid, icid)


def discard(devid: int, eventid: int) -> bytes:
    return encode(GITS_CMD_DISCARD | devid << 32, eventid)


def inv(devid: int, eventid: int) -> bytes:
    return encode(GITS_CMD_INV | devid << 32, eventid)


def int_(devid: int, eventid: int) -> bytes:
    return encode(GITS_CMD_INT | devid << 32, eventid)


def clear(devid: int, eventid: int) -> bytes:
    return encode(GITS_CMD_CLEAR | devid << 32, eventid)


def invall(icid: int) -> bytes:
    return encode(GITS_CMD_INVALL, 0, icid)


def sync(rdbase: int) -> bytes:
    return encode(GITS_CMD_SYNC, 0, (rdbase & 0xFFFF_FFFF) << 16)


def movall(rd1: int, rd2: int) -> bytes:
    return encode(GITS_CMD_MOVALL, 0, (rd1 & 0xFFFF_FFFF) << 16, (rd2 & 0xFFFF_FFFF) << 16)
