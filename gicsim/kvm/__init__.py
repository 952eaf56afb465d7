"""The kernel-side model in plain Python (layer 1, the bottom; imports no SimPy or pandas).

Its files mirror the kernel's ``arch/arm64/kvm/vgic/`` so a reader can put them side by side
(Linux 6.12.117, Debian ``linux-source-6.12``, unless a module says otherwise):

=================  ==========================================================================
``its.py``         ``vgic-its.c``: ITS registers, command queue, commands, MSI translation,
                   translation cache, ABI REV0 save/restore
``vgic.py``        ``vgic.c``: LPI records, ap_list, queueing, pruning, acknowledge/EOI
``vgic_v3.py``     ``vgic-v3.c``: pending tables (sync, save)
``vgic_mmio.py``   ``vgic-mmio.c``: register helpers and BASER sanitisers
``vgic_mmio_v3.py`` ``vgic-mmio-v3.c``: the redistributor frame, ``GICR_CTLR.EnableLPIs``
``vgic_init.py``   ``vgic-init.c``: ``Vgic``, the VM's vGIC to instantiate
``kvm_device.py``  ``vgic-kvm-device.c`` (and the ITS device ops of ``vgic-its.c``): device
                   attrs, the all-vCPU trylock behind ``-EBUSY``
``arm_gic_v3.py``  ``include/linux/irqchip/arm-gic-v3.h``: GICR offsets and fields
``abi.py``         the ITS table ABI REV0 (``vgic.h`` ``KVM_ITS_*``)
``commands.py``    ITS command encodings (``its_cmd_get_*``)
``memory.py``      guest RAM (``kvm_read_guest`` / ``kvm_write_guest`` semantics)
``errors.py``      errnos and ``E_ITS_*`` codes
``releases.py``    kernel releases and variants: the only switches that change outcomes
=================  ==========================================================================
"""
