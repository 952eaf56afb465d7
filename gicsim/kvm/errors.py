"""Typed KVM errnos and the architectural ITS command error codes.

KVM device ioctls fail with a negative errno; we raise one exception class per errno so a
caller (the migration controller, a test) can catch exactly what the kernel would return.
"""

from __future__ import annotations


class KvmError(Exception):
    """A KVM ioctl failure; ``errno`` is the kernel's name for it (``"EBUSY"``...)."""

    errno: str = "EIO"

    def __init__(self, why: str = "") -> None:
        super().__init__(f"-{self.errno}" + (f": {why}" if why else ""))
        self.why = why


class EBUSY(KvmError):
    errno = "EBUSY"


class EINVAL(KvmError):
    errno = "EINVAL"


class EFAULT(KvmError):
    errno = "EFAULT"


class ENXIO(KvmError):
    errno = "ENXIO"


class ENOMEM(KvmError):
    errno = "ENOMEM"


class EEXIST(KvmError):
    errno = "EEXIST"


class EACCES(KvmError):
    errno = "EACCES"


class ENODEV(KvmError):
    errno = "ENODEV"


class E2BIG(KvmError):
    errno = "E2BIG"


class KernelOops(KvmError):
    """Not an errno: the kernel dereferenced a bad pointer (an oops). The ioctl never returns
    normally; the VMM sees its thread die. Modelled as its own outcome, errno name ``OOPS``
    (a migration reports it as ``failed`` with errno ``OOPS``), never as a made-up errno."""

    errno = "OOPS"


ERRNOS: dict[str, type[KvmError]] = {
    cls.errno: cls for cls in (EBUSY, EINVAL, EFAULT, ENXIO, ENOMEM, EEXIST, EACCES, ENODEV, E2BIG)
}


class ItsCommandError(Exception):
    """A command handler's positive E_ITS_* result; KVM discards it, we record it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# include/linux/irqchip/arm-gic-v3.h
E_ITS = {
    "E_ITS_MOVI_UNMAPPED_INTERRUPT": 0x010107,
    "E_ITS_MOVI_UNMAPPED_COLLECTION": 0x010109,
    "E_ITS_INT_UNMAPPED_INTERRUPT": 0x010307,
    "E_ITS_CLEAR_UNMAPPED_INTERRUPT": 0x010507,
    "E_ITS_MAPD_DEVICE_OOR": 0x010801,
    "E_ITS_MAPD_ITTSIZE_OOR": 0x010802,
    "E_ITS_MAPC_PROCNUM_OOR": 0x010902,
    "E_ITS_MAPC_COLLECTION_OOR": 0x010903,
    "E_ITS_MAPTI_UNMAPPED_DEVICE": 0x010A04,
    "E_ITS_MAPTI_ID_OOR": 0x010A05,
    "E_ITS_MAPTI_PHYSICALID_OOR": 0x010A06,
    "E_ITS_INV_UNMAPPED_INTERRUPT": 0x010C07,
    "E_ITS_INVALL_UNMAPPED_COLLECTION": 0x010D09,
    "E_ITS_MOVALL_PROCNUM_OOR": 0x010E01,
    "E_ITS_DISCARD_UNMAPPED_INTERRUPT": 0x010F07,
}
