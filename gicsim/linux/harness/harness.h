/* SPDX-License-Identifier: GPL-2.0 */
/*
 * harness.h -- the flat C API of libkref.so (plain C types only, for ctypes).
 *
 * Return conventions: int functions return 0 or a negative errno, exactly what the
 * kernel function they drive returned, unless stated otherwise.
 */
#ifndef KREF_HARNESS_H
#define KREF_HARNESS_H
#include <stdint.h>

struct kvm;
struct kvm_device;

/* One LPI record (struct vgic_irq) as the distributor holds it. */
struct h_irq_state {
	uint32_t intid;
	int32_t target_vcpu;	/* irq->target_vcpu->vcpu_id, or -1 */
	int32_t queued_vcpu;	/* irq->vcpu: the vCPU whose ap_list holds it, or -1 */
	uint32_t refcount;	/* kref_read(&irq->refcount) */
	uint8_t pending_latch, enabled, priority, group, active, hw, config, pad;
};

#define H_ABI_VERSION 1
int h_abi_version(void);
/* "6.12.117" etc. is known to Python; this tells which data layout was compiled */
int h_kernel_has_lpi_xa(void);

/* --- VM lifecycle ---------------------------------------------------------- */
/* KVM_CREATE_VM + KVM_CREATE_VCPU x nr_vcpus + KVM_CREATE_DEVICE(VGIC_V3), in
 * QEMU's order. ipa_bits is the VM's IPA size (KVM_VM_TYPE_ARM_IPA_SIZE). */
int h_vm_create(int nr_vcpus, uint32_t ipa_bits, struct kvm **out);
/* KVM_SET_USER_MEMORY_REGION: guest [gpa, gpa + size) is host memory at hva
 * (owned by the caller, who must keep it alive until h_vm_destroy).
 * flags: 2 = KVM_MEM_READONLY. -EINVAL bad alignment, -EEXIST overlap. */
int h_vm_add_memslot(struct kvm *kvm, int slot, uint64_t gpa, uint64_t size, void *hva,
		     uint32_t flags);
/* KVM_GET_DIRTY_LOG for one slot (bitmap of 64-bit words); clear resets it */
int h_vm_dirty_log(struct kvm *kvm, int slot, uint64_t *out, int nwords, int clear);
/* GICv3 bring-up: ADDR(DIST), ADDR(REDIST), CTRL_INIT, then what the first
 * KVM_RUN does (kvm_vgic_map_resources). */
int h_vgic_setup(struct kvm *kvm, uint64_t dist_base, uint64_t redist_base);
struct kvm_device *h_vgic_dev(struct kvm *kvm);
int h_vm_nr_vcpus(struct kvm *kvm);
void h_vm_destroy(struct kvm *kvm);
/* number of KVM_BUG_ON()s hit so far (the kernel would mark the VM dead) */
int h_kvm_bugs(void);

/* --- devices and attributes ------------------------------------------------ */
int h_its_create(struct kvm *kvm, struct kvm_device **out);
/* KVM_{SET,GET,HAS}_DEVICE_ATTR; val is what attr.addr points at (u64 storage;
 * 32-bit register groups use its low half, as on little-endian hosts) */
int h_dev_set_attr(struct kvm_device *dev, uint32_t group, uint64_t attr, uint64_t *val);
int h_dev_get_attr(struct kvm_device *dev, uint32_t group, uint64_t attr, uint64_t *val);
int h_dev_has_attr(struct kvm_device *dev, uint32_t group, uint64_t attr);

/* --- guest accesses -------------------------------------------------------- */
/* A guest data abort: kvm_io_bus_write/read on KVM_MMIO_BUS from vCPU vcpu_idx.
 * -EOPNOTSUPP when no device claims [gpa, gpa + len) (KVM exits to userspace). */
int h_mmio_write(struct kvm *kvm, int vcpu_idx, uint64_t gpa, int len, uint64_t val);
int h_mmio_read(struct kvm *kvm, int vcpu_idx, uint64_t gpa, int len, uint64_t *val);
/* kvm_read_guest / kvm_write_guest (page by page, -EFAULT outside memslots) */
int h_mem_read(struct kvm *kvm, uint64_t gpa, void *buf, uint64_t len);
int h_mem_write(struct kvm *kvm, uint64_t gpa, const void *buf, uint64_t len);

/* --- interrupts ------------------------------------------------------------ */
/* KVM_SIGNAL_MSI: 1 delivered, 0 blocked by the guest's mapping, -errno */
int h_signal_msi(struct kvm *kvm, uint64_t address, uint32_t data, uint32_t devid,
		 uint32_t flags);
/* irqfd fast path (kvm_arch_set_irq_inatomic): 0 on a translation-cache hit,
 * -EWOULDBLOCK otherwise (the kernel then defers to the KVM_SIGNAL_MSI path) */
int h_irqfd_inject_atomic(struct kvm *kvm, uint64_t address, uint32_t data, uint32_t devid);

/* --- ITS internals --------------------------------------------------------- */
/* run one 32-byte command as the CWRITER path does (under cmd_lock), returning
 * what vgic_its_handle_command() returned: 0, an E_ITS_* code or -errno */
int h_its_exec_cmd(struct kvm_device *its, const uint64_t cmd[4]);
/* text dump of the ITS (see its_wrap.c), returns the length (-ENOSPC if len is short) */
int h_its_dump(struct kvm_device *its, char *buf, int len);

/* --- vCPUs ----------------------------------------------------------------- */
/* running == vcpu->mutex held (the vCPU thread is inside KVM_RUN) */
int h_vcpu_set_running(struct kvm *kvm, int vcpu_idx, int running);
int h_vcpu_kicks(struct kvm *kvm, int vcpu_idx);
/* guest entry: kvm_vgic_flush_hwstate() fills the emulated list registers */
int h_vcpu_flush(struct kvm *kvm, int vcpu_idx);
/* guest exit: kvm_vgic_sync_hwstate() folds the LRs back and prunes the ap_list */
int h_vcpu_sync(struct kvm *kvm, int vcpu_idx);
/* the emulated ICH_LR<n>_EL2 values: returns used_lrs, copies up to max */
int h_vcpu_get_lrs(struct kvm *kvm, int vcpu_idx, uint64_t *out, int max);
/* what the guest does to an LR (ack: pending->active, EOI: active->invalid) */
int h_vcpu_set_lr(struct kvm *kvm, int vcpu_idx, int lr, uint64_t val);
int h_vcpu_nr_lr(void);
/* INTIDs on a vCPU's ap_list, in list order */
int h_vcpu_ap_list(struct kvm *kvm, int vcpu_idx, uint32_t *out, int max);

/* --- distributor LPI records ----------------------------------------------- */
int h_lpi_list(struct kvm *kvm, uint32_t *out, int max);
int h_lpi_state(struct kvm *kvm, uint32_t intid, struct h_irq_state *st);

/* --- test hooks (never used by the reference itself) ----------------------- */
/* 1: call an aborting stub; 2: heap buffer overflow (ASan positive control);
 * 3: BUG_ON(1) */
int h_debug_fault(int kind);
#endif
