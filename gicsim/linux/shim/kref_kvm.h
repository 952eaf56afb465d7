/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kref_kvm.h -- the slice of include/linux/kvm_host.h, arch/arm64/include/asm/
 * kvm_host.h / kvm_mmu.h / kvm_emulate.h that the vgic files use.
 *
 * struct kvm and struct kvm_vcpu hold only the members the vgic code touches,
 * plus harness state (memslots, the MMIO bus, the vgic device, LR counters).
 * Their layout is private to the harness (Python never sees it).
 */
#ifndef KREF_KVM_H
#define KREF_KVM_H
#include "kref_base.h"
#include "kref_uapi.h"
struct kvm; struct kvm_vcpu; struct kvm_device; struct kvm_io_device;
#include <kvm/arm_vgic.h>

/* asm/cputype.h MPIDR helpers */
#define MPIDR_LEVEL_BITS_SHIFT	3
#define MPIDR_LEVEL_BITS	(1 << MPIDR_LEVEL_BITS_SHIFT)
#define MPIDR_LEVEL_MASK	((1 << MPIDR_LEVEL_BITS) - 1)
#define MPIDR_LEVEL_SHIFT(level) (((1 << (level)) >> 1) << MPIDR_LEVEL_BITS_SHIFT)
#define MPIDR_AFFINITY_LEVEL(mpidr, level) (((mpidr) >> MPIDR_LEVEL_SHIFT(level)) & MPIDR_LEVEL_MASK)
#define MPIDR_HWID_BITMASK	UL(0xff00ffffff)

/* arch/arm64/include/asm/kvm_host.h: KVM_MAX_VCPUS is VGIC_V3_MAX_CPUS there */
#define KVM_MAX_VCPUS		512
#define KVM_USER_MEM_SLOTS	32
#define KVM_MEMSLOT_INVALID	(1UL << 16)
#define KVM_REQ_IRQ_PENDING	1
#define KVM_ARM_VCPU_PMU_V3	3
#define KVM_MMIO_BUS		0

struct kvm_vcpu_arch {
	struct vgic_cpu vgic_cpu;
	u64 mpidr;		/* MPIDR_EL1 as reset by sys_regs.c reset_mpidr() */
};

struct kvm_vcpu {
	struct kvm *kvm;
	int vcpu_id;
	int vcpu_idx;
	struct mutex mutex;	/* held == the vCPU thread is inside an ioctl (KVM_RUN) */
	unsigned long requests;	/* kvm_make_request() bits */
	void *pid;		/* non-NULL once the vCPU has run (vcpu_has_run_once) */
	int kicks;		/* kvm_vcpu_kick() count: observable by the harness */
	struct kvm_vcpu_arch arch;
};

/* A memslot: [base_gfn, base_gfn + npages) backed by host memory at hva
 * (owned by the caller of the harness, i.e. Python). */
struct kvm_memory_slot {
	gfn_t base_gfn;
	unsigned long npages;
	u8 *hva;
	u32 flags;
	short id;
	unsigned long *dirty_bitmap;	/* mark_page_dirty() */
};

/* virt/kvm/kvm_main.c: one entry of a kvm_io_bus, kept sorted by kvm_io_bus_cmp */
struct kvm_io_range { gpa_t addr; int len; struct kvm_io_device *dev; };
struct kvm_io_bus { int dev_count; int cap; struct kvm_io_range *range; };

struct kvm_s2_mmu { u32 ipa_bits; };	/* kvm_phys_shift() */
struct kvm_arch {
	struct kvm_s2_mmu mmu;
	struct vgic_dist vgic;
	struct mutex config_lock;
};

struct kvm_device_ops {
	const char *name;
	int (*create)(struct kvm_device *dev, u32 type);
	void (*init)(struct kvm_device *dev);
	void (*destroy)(struct kvm_device *dev);
	void (*release)(struct kvm_device *dev);
	int (*set_attr)(struct kvm_device *dev, struct kvm_device_attr *attr);
	int (*get_attr)(struct kvm_device *dev, struct kvm_device_attr *attr);
	int (*has_attr)(struct kvm_device *dev, struct kvm_device_attr *attr);
	long (*ioctl)(struct kvm_device *dev, unsigned int ioctl, unsigned long arg);
};

struct kvm_device {
	const struct kvm_device_ops *ops;
	struct kvm *kvm;
	void *private;
	struct list_head vm_node;
};

struct kvm {
	struct mutex lock;
	struct mutex slots_lock;
	struct srcu_struct srcu;
	struct kvm_arch arch;
	atomic_t online_vcpus;
	int created_vcpus;
	int max_vcpus;
	struct kvm_vcpu *vcpus[KVM_MAX_VCPUS];	/* stands in for the vcpu_array xarray */
	struct list_head devices;
	struct kvm_memory_slot memslots[KVM_USER_MEM_SLOTS];
	int nr_memslots;
	struct kvm_io_bus mmio_bus;
	struct kvm_device *vgic_dev;		/* harness: the KVM_DEV_TYPE_ARM_VGIC_V3 device */
};

/* kernel: include/linux/kvm_host.h kvm_get_vcpu() (vcpu_array is a plain array) */
static inline struct kvm_vcpu *kvm_get_vcpu(struct kvm *kvm, int i)
{
	int num_vcpus = atomic_read(&kvm->online_vcpus);

	if (i >= num_vcpus)
		return NULL;
	i = array_index_nospec(i, num_vcpus);
	smp_rmb();
	return i < 0 ? NULL : kvm->vcpus[i];
}
/* include/linux/kvm_host.h iterates vcpu_array over [0, online_vcpus - 1] */
#define kvm_for_each_vcpu(idx, vcpup, kvm)						\
	for ((idx) = 0; (idx) < (unsigned long)atomic_read(&(kvm)->online_vcpus) &&	\
	     ((vcpup) = (kvm)->vcpus[(idx)]) != NULL; (idx)++)
struct kvm_vcpu *kvm_get_vcpu_by_id(struct kvm *kvm, int id);
#define kvm_make_request(req, vcpu)	((vcpu)->requests |= 1UL << (req))
#define kvm_vcpu_kick(vcpu)		((void)(vcpu)->kicks++)
#define kvm_make_all_cpus_request(kvm, req) do { (void)(kvm); } while (0)
#define vcpu_has_run_once(vcpu)		(!!(vcpu)->pid)
#define kvm_get_running_vcpu()		((struct kvm_vcpu *)NULL)
#define kvm_arm_get_running_vcpu()	((struct kvm_vcpu *)NULL)
#define kvm_arm_halt_guest(kvm)		do { } while (0)
#define kvm_arm_resume_guest(kvm)	do { } while (0)
#define kvm_notify_acked_irq(kvm, chip, pin) do { } while (0)
#define kvm_has_feat(kvm, ...)		1
#define kvm_vm_dead(kvm)		do { (void)(kvm); kref_kvm_bugs++; } while (0)
static inline unsigned long kvm_vcpu_get_mpidr_aff(struct kvm_vcpu *vcpu)
{ return vcpu->arch.mpidr & MPIDR_HWID_BITMASK; }
struct kvm_vcpu *kvm_mpidr_to_vcpu(struct kvm *kvm, unsigned long mpidr);
bool lock_all_vcpus(struct kvm *kvm);
void unlock_all_vcpus(struct kvm *kvm);

/* guest memory (virt/kvm/kvm_main.c, asm/kvm_mmu.h) */
int kvm_read_guest(struct kvm *kvm, gpa_t gpa, void *data, unsigned long len);
int kvm_write_guest(struct kvm *kvm, gpa_t gpa, const void *data, unsigned long len);
int kvm_read_guest_lock(struct kvm *kvm, gpa_t gpa, void *data, unsigned long len);
int kvm_write_guest_lock(struct kvm *kvm, gpa_t gpa, const void *data, unsigned long len);
bool kvm_is_visible_gfn(struct kvm *kvm, gfn_t gfn);
struct kvm_memory_slot *gfn_to_memslot(struct kvm *kvm, gfn_t gfn);
#define gpa_to_gfn(gpa)	((gfn_t)((gpa) >> PAGE_SHIFT))
#define gfn_to_gpa(gfn)	((gpa_t)(gfn) << PAGE_SHIFT)
/* the stage-2 IPA size: 6.12 passes &kvm->arch.mmu, 6.1 passes kvm */
#define kvm_phys_shift(x) _Generic((x),							\
	struct kvm *: ((struct kvm *)(void *)(x))->arch.mmu.ipa_bits,			\
	default: ((struct kvm_s2_mmu *)(void *)(x))->ipa_bits)
#define kvm_phys_size(x)	(1ULL << kvm_phys_shift(x))
#define kvm_phys_mask(x)	(kvm_phys_size(x) - 1ULL)

/* KVM_MMIO_BUS (virt/kvm/kvm_main.c) */
int kvm_io_bus_register_dev(struct kvm *kvm, int bus_idx, gpa_t addr, int len,
			    struct kvm_io_device *dev);
int kvm_io_bus_unregister_dev(struct kvm *kvm, int bus_idx, struct kvm_io_device *dev);
int kvm_io_bus_write(struct kvm_vcpu *vcpu, int bus_idx, gpa_t addr, int len, const void *val);
int kvm_io_bus_read(struct kvm_vcpu *vcpu, int bus_idx, gpa_t addr, int len, void *val);
struct kvm_io_device *kvm_io_bus_get_dev(struct kvm *kvm, int bus_idx, gpa_t addr);
/* arch/arm64/kvm/mmio.c */
void kvm_mmio_write_buf(void *buf, unsigned int len, unsigned long data);
unsigned long kvm_mmio_read_buf(const void *buf, unsigned int len);

/* KVM device types (virt/kvm/kvm_main.c kvm_device_ops_table) */
int kvm_register_device_ops(const struct kvm_device_ops *ops, u32 type);
void kvm_unregister_device_ops(u32 type);
const struct kvm_device_ops *kref_device_ops(u32 type);
extern struct kvm_device_ops kvm_arm_vgic_v2_ops;
extern struct kvm_device_ops kvm_arm_vgic_v3_ops;

/* vgic-irqfd.c / vgic-debug.c are not compiled: see kref_runtime.c */
int kvm_vgic_setup_default_irq_routing(struct kvm *kvm);

/* hyp-side GICv3 CPU interface save/restore (arch/arm64/kvm/hyp/vgic-v3-sr.c):
 * on real hardware they move vgic_v3_cpu_if <-> ICH_* registers. In the harness
 * the emulated LRs ARE vgic_v3_cpu_if.vgic_lr[], so there is nothing to move. */
#define __vgic_v3_save_state(cpu_if)		do { (void)(cpu_if); } while (0)
#define __vgic_v3_restore_state(cpu_if)		do { (void)(cpu_if); } while (0)
#define __vgic_v3_activate_traps(cpu_if)	do { (void)(cpu_if); } while (0)
#define __vgic_v3_deactivate_traps(cpu_if)	do { (void)(cpu_if); } while (0)

#endif /* KREF_KVM_H */
