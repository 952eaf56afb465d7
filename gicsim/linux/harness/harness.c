// SPDX-License-Identifier: GPL-2.0
/*
 * harness.c -- drives the kernel's vgic code the way the KVM ioctls and a vCPU
 * run loop do. Each h_* function names the kernel path it stands for; the work
 * is done by kernel functions (vgic-*.c), the harness only sequences them and
 * takes the locks the ioctl layer (virt/kvm/kvm_main.c, arch/arm64/kvm/arm.c)
 * would take.
 */
#include <linux/kvm_host.h>
#include <linux/irqchip/arm-gic-v3.h>
#include <kvm/iodev.h>
#include "vgic.h"
#include "vgic-mmio.h"
#include "harness.h"

/* 6.12 keeps LPIs in dist->lpi_xa (LPI_XA_MARK_DEBUG_ITER exists since v6.9);
 * 6.1 keeps them on dist->lpi_list_head. */
#ifdef LPI_XA_MARK_DEBUG_ITER
#define KREF_LPI_XA 1
#else
#define KREF_LPI_XA 0
#endif

int h_abi_version(void) { return H_ABI_VERSION; }
int h_kernel_has_lpi_xa(void) { return KREF_LPI_XA; }
int h_kvm_bugs(void) { return kref_kvm_bugs; }

/* The host, as kvm_vgic_hyp_init()/vgic_v3_probe() would have found it: a GICv3
 * CPU interface with 5 priority bits, 16 ID bits, 4 list registers, no GICv4. */
#define KREF_NR_LR 4
static void host_init_once(void)
{
	static bool done;

	if (done)
		return;
	kvm_vgic_global_state.type = VGIC_V3;
	kvm_vgic_global_state.max_gic_vcpus = VGIC_V3_MAX_CPUS;
	kvm_vgic_global_state.can_emulate_gicv2 = false;
	kvm_vgic_global_state.has_gicv4 = false;
	kvm_vgic_global_state.has_gicv4_1 = false;
	/* ICH_VTR_EL2: PRIbits-1 = 4 [31:29], IDbits = 0 (16 bits) [25:23],
	 * SEIS/A3V [22:21] = 0, nV4 [20] = 0, TDS [19] = 1, ListRegs-1 [4:0] */
	kvm_vgic_global_state.ich_vtr_el2 = (4U << 29) | (1U << 19) | (KREF_NR_LR - 1);
	kvm_vgic_global_state.nr_lr = KREF_NR_LR;
	static_branch_enable(&kvm_vgic_global_state.gicv3_cpuif);
	/* module init: vgic_v3_probe() -> kvm_register_vgic_device(), which also
	 * registers the (static) ITS device ops */
	if (kvm_register_vgic_device(KVM_DEV_TYPE_ARM_VGIC_V3))
		KREF_DIE("kvm_register_vgic_device failed");
	done = true;
}

static struct kvm_vcpu *vcpu_of(struct kvm *kvm, int idx)
{
	return kvm_get_vcpu(kvm, idx);
}

/* kvm_ioctl_create_device() */
static int create_device(struct kvm *kvm, u32 type, struct kvm_device **out)
{
	const struct kvm_device_ops *ops = kref_device_ops(type);
	struct kvm_device *dev;
	int ret;

	if (!ops)
		return -ENODEV;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ops = ops;
	dev->kvm = kvm;
	mutex_lock(&kvm->lock);
	ret = ops->create(dev, type);
	if (ret < 0) {
		mutex_unlock(&kvm->lock);
		free(dev);
		return ret;
	}
	list_add_rcu(&dev->vm_node, &kvm->devices);
	mutex_unlock(&kvm->lock);
	if (ops->init)
		ops->init(dev);
	*out = dev;
	return 0;
}

int h_vm_create(int nr_vcpus, u32 ipa_bits, struct kvm **out)
{
	struct kvm *kvm;
	int ret;

	*out = NULL;
	if (nr_vcpus < 1 || nr_vcpus > KVM_MAX_VCPUS || ipa_bits < 32 || ipa_bits > 52)
		return -EINVAL;
	host_init_once();
	kvm = calloc(1, sizeof(*kvm));
	if (!kvm)
		return -ENOMEM;
	/* KVM_CREATE_VM: kvm_create_vm() + kvm_arch_init_vm() */
	INIT_LIST_HEAD(&kvm->devices);
	kvm->arch.mmu.ipa_bits = ipa_bits;
	kvm->max_vcpus = KVM_MAX_VCPUS;		/* kvm_arm_default_max_vcpus() */
	kvm_vgic_early_init(kvm);

	/* KVM_CREATE_VCPU x n: kvm_vm_ioctl_create_vcpu() + kvm_arch_vcpu_create() */
	for (int i = 0; i < nr_vcpus; i++) {
		struct kvm_vcpu *vcpu = calloc(1, sizeof(*vcpu));

		if (!vcpu) {
			h_vm_destroy(kvm);
			return -ENOMEM;
		}
		mutex_lock(&kvm->lock);
		kvm->created_vcpus++;
		mutex_unlock(&kvm->lock);
		vcpu->kvm = kvm;
		vcpu->vcpu_id = i;
		mutex_init(&vcpu->mutex);
		/* kernel: arch/arm64/kvm/sys_regs.c reset_mpidr() (at KVM_ARM_VCPU_INIT) */
		vcpu->arch.mpidr = ((u64)(i & 0x0f) << MPIDR_LEVEL_SHIFT(0)) |
				   ((u64)((i >> 4) & 0xff) << MPIDR_LEVEL_SHIFT(1)) |
				   ((u64)((i >> 12) & 0xff) << MPIDR_LEVEL_SHIFT(2)) | (1ULL << 31);
		ret = kvm_vgic_vcpu_init(vcpu);
		if (ret) {
			free(vcpu);
			h_vm_destroy(kvm);
			return ret;
		}
		mutex_lock(&kvm->lock);
		vcpu->vcpu_idx = atomic_read(&kvm->online_vcpus);
		kvm->vcpus[vcpu->vcpu_idx] = vcpu;
		atomic_inc(&kvm->online_vcpus);
		mutex_unlock(&kvm->lock);
	}

	/* KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3) -> vgic_create() -> kvm_vgic_create() */
	ret = create_device(kvm, KVM_DEV_TYPE_ARM_VGIC_V3, &kvm->vgic_dev);
	if (ret) {
		h_vm_destroy(kvm);
		return ret;
	}
	*out = kvm;
	return 0;
}

int h_vm_add_memslot(struct kvm *kvm, int slot, u64 gpa, u64 size, void *hva, u32 flags)
{
	struct kvm_memory_slot *s;
	gfn_t base = gpa >> PAGE_SHIFT, npages = size >> PAGE_SHIFT;

	/* kvm_set_memory_region() checks: page alignment, size, overlap */
	if ((gpa | size) & (PAGE_SIZE - 1) || !size || !hva ||
	    ((uintptr_t)hva & (PAGE_SIZE - 1)) || slot < 0 || slot >= KVM_USER_MEM_SLOTS ||
	    (flags & ~2U))
		return -EINVAL;
	if (kvm->nr_memslots == KVM_USER_MEM_SLOTS)
		return -ENOSPC;
	for (int i = 0; i < kvm->nr_memslots; i++) {
		s = &kvm->memslots[i];
		if (s->id == slot)
			return -EEXIST;
		if (base < s->base_gfn + s->npages && s->base_gfn < base + npages)
			return -EEXIST;
	}
	s = &kvm->memslots[kvm->nr_memslots];
	memset(s, 0, sizeof(*s));
	s->base_gfn = base;
	s->npages = npages;
	s->hva = hva;
	s->flags = flags;
	s->id = slot;
	s->dirty_bitmap = calloc(DIV_ROUND_UP(npages, BITS_PER_LONG), sizeof(unsigned long));
	if (!s->dirty_bitmap)
		return -ENOMEM;
	kvm->nr_memslots++;
	return 0;
}

int h_vm_dirty_log(struct kvm *kvm, int slot, u64 *out, int nwords, int clear)
{
	for (int i = 0; i < kvm->nr_memslots; i++) {
		struct kvm_memory_slot *s = &kvm->memslots[i];
		int n = DIV_ROUND_UP(s->npages, BITS_PER_LONG);

		if (s->id != slot)
			continue;
		if (out)
			memcpy(out, s->dirty_bitmap, min(n, nwords) * sizeof(u64));
		if (clear)
			memset(s->dirty_bitmap, 0, n * sizeof(unsigned long));
		return n;
	}
	return -ENOENT;
}

struct kvm_device *h_vgic_dev(struct kvm *kvm) { return kvm->vgic_dev; }
int h_vm_nr_vcpus(struct kvm *kvm) { return atomic_read(&kvm->online_vcpus); }

/* KVM_{SET,GET,HAS}_DEVICE_ATTR -> kvm_device_ioctl_attr() -> ops */
int h_dev_set_attr(struct kvm_device *dev, u32 group, u64 attr, u64 *val)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (u64)(uintptr_t)val };

	if (!dev->ops->set_attr)
		return -EPERM;
	return dev->ops->set_attr(dev, &a);
}

int h_dev_get_attr(struct kvm_device *dev, u32 group, u64 attr, u64 *val)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (u64)(uintptr_t)val };

	if (!dev->ops->get_attr)
		return -EPERM;
	return dev->ops->get_attr(dev, &a);
}

int h_dev_has_attr(struct kvm_device *dev, u32 group, u64 attr)
{
	struct kvm_device_attr a = { .group = group, .attr = attr };

	if (!dev->ops->has_attr)
		return -EPERM;
	return dev->ops->has_attr(dev, &a);
}

int h_vgic_setup(struct kvm *kvm, u64 dist_base, u64 redist_base)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u64 addr;
	int ret;

	addr = dist_base;
	ret = h_dev_set_attr(kvm->vgic_dev, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &addr);
	if (ret)
		return ret;
	addr = redist_base;
	ret = h_dev_set_attr(kvm->vgic_dev, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &addr);
	if (ret)
		return ret;
	ret = h_dev_set_attr(kvm->vgic_dev, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	if (ret)
		return ret;
	/* first KVM_RUN: kvm_arch_vcpu_run_pid_change() -> kvm_vgic_map_resources();
	 * afterwards every vCPU has run once */
	ret = kvm_vgic_map_resources(kvm);
	if (ret)
		return ret;
	kvm_for_each_vcpu(i, vcpu, kvm)
		vcpu->pid = vcpu;
	return 0;
}

int h_its_create(struct kvm *kvm, struct kvm_device **out)
{
	return create_device(kvm, KVM_DEV_TYPE_ARM_VGIC_ITS, out);
}

/* kvm_destroy_vm(): kvm_destroy_devices(), then kvm_arch_destroy_vm():
 * kvm_vgic_destroy(), then kvm_destroy_vcpus() */
void h_vm_destroy(struct kvm *kvm)
{
	struct kvm_device *dev, *tmp;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	if (!kvm)
		return;
	kvm_for_each_vcpu(i, vcpu, kvm)		/* no vCPU thread is left */
		vcpu->mutex.l.held = 0;
	list_for_each_entry_safe(dev, tmp, &kvm->devices, vm_node) {
		list_del(&dev->vm_node);
		dev->ops->destroy(dev);
	}
	kvm_vgic_destroy(kvm);
	for (i = 0; i < KVM_MAX_VCPUS; i++) {
		if (kvm->vcpus[i])
			kvm_vgic_vcpu_destroy(kvm->vcpus[i]);	/* kvm_arch_vcpu_destroy() */
		free(kvm->vcpus[i]);
	}
	for (int s = 0; s < kvm->nr_memslots; s++)
		free(kvm->memslots[s].dirty_bitmap);
	free(kvm->mmio_bus.range);
	free(kvm);
}

/* Guest data abort on gpa from vCPU vcpu_idx: arch/arm64/kvm/mmio.c
 * io_mem_abort() -> kvm_io_bus_{write,read}() under kvm->srcu. */
int h_mmio_write(struct kvm *kvm, int vcpu_idx, u64 gpa, int len, u64 val)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);
	u8 buf[8];
	int idx, ret;

	if (!vcpu || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	kvm_mmio_write_buf(buf, len, val);
	idx = srcu_read_lock(&kvm->srcu);
	ret = kvm_io_bus_write(vcpu, KVM_MMIO_BUS, gpa, len, buf);
	srcu_read_unlock(&kvm->srcu, idx);
	return ret;
}

int h_mmio_read(struct kvm *kvm, int vcpu_idx, u64 gpa, int len, u64 *val)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);
	u8 buf[8] = { 0 };
	int idx, ret;

	if (!vcpu || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	idx = srcu_read_lock(&kvm->srcu);
	ret = kvm_io_bus_read(vcpu, KVM_MMIO_BUS, gpa, len, buf);
	srcu_read_unlock(&kvm->srcu, idx);
	*val = ret ? 0 : kvm_mmio_read_buf(buf, len);
	return ret;
}

int h_mem_read(struct kvm *kvm, u64 gpa, void *buf, u64 len)
{
	return kvm_read_guest(kvm, gpa, buf, len);
}

int h_mem_write(struct kvm *kvm, u64 gpa, const void *buf, u64 len)
{
	return kvm_write_guest(kvm, gpa, buf, len);
}

/* KVM_SIGNAL_MSI: kernel: virt/kvm/irqchip.c kvm_send_userspace_msi() builds a
 * routing entry and calls arch/arm64/kvm/vgic/vgic-irqfd.c kvm_set_msi(), which
 * (after kvm_populate_msi() copies it back) calls vgic_its_inject_msi(). */
int h_signal_msi(struct kvm *kvm, u64 address, u32 data, u32 devid, u32 flags)
{
	struct kvm_msi msi = {
		.address_lo = (u32)address, .address_hi = (u32)(address >> 32),
		.data = data, .flags = flags, .devid = devid,
	};

	if (!irqchip_in_kernel(kvm) || (msi.flags & ~KVM_MSI_VALID_DEVID))
		return -EINVAL;		/* kvm_send_userspace_msi() */
	if (!vgic_has_its(kvm))
		return -ENODEV;		/* kvm_set_msi() */
	return vgic_its_inject_msi(kvm, &msi);
}

/* irqfd: kernel: vgic-irqfd.c kvm_arch_set_irq_inatomic() for an MSI route */
int h_irqfd_inject_atomic(struct kvm *kvm, u64 address, u32 data, u32 devid)
{
	struct kvm_msi msi = {
		.address_lo = (u32)address, .address_hi = (u32)(address >> 32),
		.data = data, .flags = KVM_MSI_VALID_DEVID, .devid = devid,
	};

	if (!vgic_has_its(kvm))
		return -EWOULDBLOCK;
	return vgic_its_inject_cached_translation(kvm, &msi);
}

/* A vCPU "runs" while its thread holds vcpu->mutex (kvm_vcpu_ioctl()). */
int h_vcpu_set_running(struct kvm *kvm, int vcpu_idx, int running)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);

	if (!vcpu)
		return -EINVAL;
	vcpu->mutex.l.held = !!running;
	return 0;
}

int h_vcpu_kicks(struct kvm *kvm, int vcpu_idx)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);

	return vcpu ? vcpu->kicks : -EINVAL;
}

/* arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run(): with IRQs off,
 * kvm_vgic_flush_hwstate() right before entering the guest ... */
int h_vcpu_flush(struct kvm *kvm, int vcpu_idx)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);

	if (!vcpu)
		return -EINVAL;
	kvm_vgic_flush_hwstate(vcpu);
	return vcpu->arch.vgic_cpu.vgic_v3.used_lrs;
}

/* ... and kvm_vgic_sync_hwstate() right after the guest exits. */
int h_vcpu_sync(struct kvm *kvm, int vcpu_idx)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);

	if (!vcpu)
		return -EINVAL;
	kvm_vgic_sync_hwstate(vcpu);
	return 0;
}

int h_vcpu_nr_lr(void) { return KREF_NR_LR; }

int h_vcpu_get_lrs(struct kvm *kvm, int vcpu_idx, u64 *out, int max)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);
	struct vgic_v3_cpu_if *cpuif;

	if (!vcpu)
		return -EINVAL;
	cpuif = &vcpu->arch.vgic_cpu.vgic_v3;
	for (int i = 0; i < (int)cpuif->used_lrs && i < max; i++)
		out[i] = cpuif->vgic_lr[i];
	return cpuif->used_lrs;
}

int h_vcpu_set_lr(struct kvm *kvm, int vcpu_idx, int lr, u64 val)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);
	struct vgic_v3_cpu_if *cpuif;

	if (!vcpu)
		return -EINVAL;
	cpuif = &vcpu->arch.vgic_cpu.vgic_v3;
	if (lr < 0 || lr >= (int)cpuif->used_lrs)
		return -EINVAL;
	cpuif->vgic_lr[lr] = val;
	return 0;
}

int h_vcpu_ap_list(struct kvm *kvm, int vcpu_idx, u32 *out, int max)
{
	struct kvm_vcpu *vcpu = vcpu_of(kvm, vcpu_idx);
	struct vgic_irq *irq;
	int n = 0;

	if (!vcpu)
		return -EINVAL;
	list_for_each_entry(irq, &vcpu->arch.vgic_cpu.ap_list_head, ap_list) {
		if (n < max)
			out[n] = irq->intid;
		n++;
	}
	return n;
}

static struct vgic_irq *lpi_lookup(struct kvm *kvm, u32 intid)
{
#if KREF_LPI_XA
	return xa_load(&kvm->arch.vgic.lpi_xa, intid);
#else
	struct vgic_irq *irq;

	list_for_each_entry(irq, &kvm->arch.vgic.lpi_list_head, lpi_list)
		if (irq->intid == intid)
			return irq;
	return NULL;
#endif
}

int h_lpi_state(struct kvm *kvm, u32 intid, struct h_irq_state *st)
{
	struct vgic_irq *irq = lpi_lookup(kvm, intid);

	memset(st, 0, sizeof(*st));
	if (!irq)
		return -ENOENT;
	st->intid = irq->intid;
	st->target_vcpu = irq->target_vcpu ? irq->target_vcpu->vcpu_id : -1;
	st->queued_vcpu = irq->vcpu ? irq->vcpu->vcpu_id : -1;
	st->refcount = kref_read(&irq->refcount);
	st->pending_latch = irq->pending_latch;
	st->enabled = irq->enabled;
	st->priority = irq->priority;
	st->group = irq->group;
	st->active = irq->active;
	st->hw = irq->hw;
	st->config = irq->config;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/* INTIDs of all LPI records, ascending; returns the count (may exceed max) */
int h_lpi_list(struct kvm *kvm, u32 *out, int max)
{
	struct vgic_irq *irq;
	int n = 0;
#if KREF_LPI_XA
	unsigned long idx;

	xa_for_each(&kvm->arch.vgic.lpi_xa, idx, irq) {
		if (n < max)
			out[n] = (u32)idx;
		n++;
	}
#else
	list_for_each_entry(irq, &kvm->arch.vgic.lpi_list_head, lpi_list) {
		if (n < max)
			out[n] = irq->intid;
		n++;
	}
	qsort(out, min(n, max), sizeof(*out), u32_cmp);
#endif
	(void)u32_cmp;
	return n;
}

int h_debug_fault(int kind)
{
	switch (kind) {
	case 1:
		vgic_v2_load(NULL);		/* an aborting stub */
		return 0;
	case 2: {
		volatile char *p = malloc(16);	/* heap-buffer-overflow */
		int v;

		p[16] = 1;
		v = p[16];
		free((void *)p);
		return v;
	}
	case 3:
		BUG_ON(kind == 3);
		return 0;
	}
	return -EINVAL;
}
