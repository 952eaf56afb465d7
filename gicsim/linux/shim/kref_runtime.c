// SPDX-License-Identifier: GPL-2.0
/*
 * kref_runtime.c -- the runtime behind the shim headers.
 *
 * Three kinds of code, each marked:
 *   "kernel: <file>"   a transcription of the named kernel function; keep it
 *                      identical in behaviour (diff against the extracted tree,
 *                      which fetch.py keeps for that purpose);
 *   "stand-in"         a userspace replacement of a kernel subsystem
 *                      (xarray, memslots, locks);
 *   "stub"             a path the harness must never reach (GICv2, GICv4,
 *                      host irqchip): it prints its name and aborts, so nothing
 *                      degrades silently.
 */
#include <linux/kvm_host.h>
#include <kvm/iodev.h>
#include "vgic.h"
#include "vgic-mmio.h"

int kref_kvm_bugs;

void kref_die(const char *what, const char *file, int line)
{
	fprintf(stderr, "kref: %s at %s:%d\n", what, file, line);
	fflush(stderr);
	abort();
}

/* ------------------------------------------------------------------ */
/* stand-in: lock tracking (see kref_base.h)                          */
void kref_lock_acquire(struct kref_lock *l, const char *name, const char *file, int line)
{
	if (l->held) {
		fprintf(stderr, "kref: self-deadlock: %s already held (%s:%d)\n", name, file, line);
		fflush(stderr);
		abort();
	}
	l->held = 1;
}

void kref_lock_release(struct kref_lock *l, const char *name, const char *file, int line)
{
	if (!l->held) {
		fprintf(stderr, "kref: unlock of %s which is not held (%s:%d)\n", name, file, line);
		fflush(stderr);
		abort();
	}
	l->held = 0;
}

void kref_lock_assert(const struct kref_lock *l, const char *name, const char *file, int line)
{
	if (!l->held) {
		fprintf(stderr, "kref: lockdep_assert_held(%s) failed (%s:%d)\n", name, file, line);
		fflush(stderr);
		abort();
	}
}

/* ------------------------------------------------------------------ */
/* stand-in: xarray as a sorted array of (index, entry)               */
static unsigned long xa_pos(const struct xarray *xa, unsigned long index, bool *found)
{
	unsigned long lo = 0, hi = xa->nr;

	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;

		if (xa->slots[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < xa->nr && xa->slots[lo].index == index;
	return lo;
}

static void xa_insert_at(struct xarray *xa, unsigned long pos, unsigned long index, void *entry)
{
	if (xa->nr == xa->cap) {
		unsigned long cap = xa->cap ? 2 * xa->cap : 16;
		struct kref_xa_slot *s = realloc(xa->slots, cap * sizeof(*s));

		if (!s)
			KREF_DIE("xarray: out of memory");
		xa->slots = s;
		xa->cap = cap;
	}
	memmove(&xa->slots[pos + 1], &xa->slots[pos], (xa->nr - pos) * sizeof(*xa->slots));
	xa->slots[pos].index = index;
	xa->slots[pos].entry = entry;
	xa->nr++;
}

static void xa_remove_at(struct xarray *xa, unsigned long pos)
{
	memmove(&xa->slots[pos], &xa->slots[pos + 1], (xa->nr - pos - 1) * sizeof(*xa->slots));
	xa->nr--;
}

void xa_init_flags(struct xarray *xa, unsigned int flags)
{
	memset(xa, 0, sizeof(*xa));
	xa->xa_flags = flags;
}

void *xa_load(struct xarray *xa, unsigned long index)
{
	bool found;
	unsigned long p = xa_pos(xa, index, &found);

	return found ? xa->slots[p].entry : NULL;
}

/* storing NULL erases, as in the kernel; returns the old entry */
void *xa_store(struct xarray *xa, unsigned long index, void *entry, gfp_t gfp)
{
	bool found;
	unsigned long p = xa_pos(xa, index, &found);
	void *old = found ? xa->slots[p].entry : NULL;

	(void)gfp;
	if (!entry) {
		if (found)
			xa_remove_at(xa, p);
	} else if (found) {
		xa->slots[p].entry = entry;
	} else {
		xa_insert_at(xa, p, index, entry);
	}
	return old;
}

void *xa_erase(struct xarray *xa, unsigned long index)
{
	return xa_store(xa, index, NULL, 0);
}

/* reserve = occupy the index with a NULL entry (if it is free) */
int xa_reserve(struct xarray *xa, unsigned long index, gfp_t gfp)
{
	bool found;
	unsigned long p = xa_pos(xa, index, &found);

	(void)gfp;
	if (!found)
		xa_insert_at(xa, p, index, NULL);
	return 0;
}

/* release a reservation that was never filled */
void xa_release(struct xarray *xa, unsigned long index)
{
	bool found;
	unsigned long p = xa_pos(xa, index, &found);

	if (found && !xa->slots[p].entry)
		xa_remove_at(xa, p);
}

/* first present (non-NULL) entry with *index <= index <= max */
void *xa_find(struct xarray *xa, unsigned long *index, unsigned long max, xa_mark_t filter)
{
	bool found;
	unsigned long p = xa_pos(xa, *index, &found);

	(void)filter;
	for (; p < xa->nr && xa->slots[p].index <= max; p++) {
		if (xa->slots[p].entry) {
			*index = xa->slots[p].index;
			return xa->slots[p].entry;
		}
	}
	return NULL;
}

void *xa_find_after(struct xarray *xa, unsigned long *index, unsigned long max, xa_mark_t filter)
{
	unsigned long next;
	void *entry;

	if (*index >= max)
		return NULL;
	next = *index + 1;
	entry = xa_find(xa, &next, max, filter);
	if (entry)
		*index = next;
	return entry;
}

bool xa_empty(const struct xarray *xa)
{
	for (unsigned long i = 0; i < xa->nr; i++)
		if (xa->slots[i].entry)
			return false;
	return true;
}

void xa_destroy(struct xarray *xa)
{
	free(xa->slots);
	xa->slots = NULL;
	xa->nr = xa->cap = 0;
}

/* ------------------------------------------------------------------ */
/* kernel: include/linux/bsearch.h __inline_bsearch() (lib/bsearch.c)  */
void *kref_bsearch(const void *key, const void *base, size_t num, size_t size,
		   int (*cmp)(const void *key, const void *elt))
{
	const char *pivot;
	int result;

	while (num > 0) {
		pivot = (const char *)base + (num >> 1) * size;
		result = cmp(key, pivot);

		if (result == 0)
			return (void *)pivot;

		if (result > 0) {
			base = pivot + size;
			num--;
		}
		num >>= 1;
	}
	return NULL;
}

/* stand-in: lib/kstrtox.c kstrtobool(), only reached by 6.1's early_param
 * parsers, which the harness never calls */
int kstrtobool(const char *s, bool *res)
{
	if (!s)
		return -EINVAL;
	switch (s[0]) {
	case 'y': case 'Y': case 't': case 'T': case '1':
		*res = true;
		return 0;
	case 'n': case 'N': case 'f': case 'F': case '0':
		*res = false;
		return 0;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* stand-in: memslots. The harness registers them (h_vm_add_memslot);  */
/* the lookups below replace virt/kvm/kvm_main.c's search_memslots().  */
struct kvm_memory_slot *gfn_to_memslot(struct kvm *kvm, gfn_t gfn)
{
	for (int i = 0; i < kvm->nr_memslots; i++) {
		struct kvm_memory_slot *s = &kvm->memslots[i];

		if (gfn >= s->base_gfn && gfn < s->base_gfn + s->npages)
			return s;
	}
	return NULL;
}

#define KREF_MEM_READONLY	(1UL << 1)	/* uapi KVM_MEM_READONLY */

/* kernel: include/linux/kvm_host.h kvm_is_visible_memslot() + kvm_main.c kvm_is_visible_gfn() */
bool kvm_is_visible_gfn(struct kvm *kvm, gfn_t gfn)
{
	struct kvm_memory_slot *memslot = gfn_to_memslot(kvm, gfn);

	return memslot && memslot->id < KVM_USER_MEM_SLOTS &&
	       !(memslot->flags & KVM_MEMSLOT_INVALID);
}

/* kernel: kvm_main.c __gfn_to_hva_many(); NULL stands for KVM_HVA_ERR_BAD */
static u8 *gfn_to_hva(struct kvm_memory_slot *slot, gfn_t gfn, bool write)
{
	if (!slot || slot->flags & KVM_MEMSLOT_INVALID)
		return NULL;
	if ((slot->flags & KREF_MEM_READONLY) && write)
		return NULL;
	return slot->hva + ((gfn - slot->base_gfn) << PAGE_SHIFT);
}

/* kernel: kvm_main.c next_segment() */
static int next_segment(unsigned long len, int offset)
{
	if (len > PAGE_SIZE - offset)
		return PAGE_SIZE - offset;
	else
		return len;
}

/* kernel: kvm_main.c kvm_read_guest() + kvm_read_guest_page() + __kvm_read_guest_page():
 * page by page, so a range that leaves the memslots fails with -EFAULT after
 * the pages before the hole were read. */
int kvm_read_guest(struct kvm *kvm, gpa_t gpa, void *data, unsigned long len)
{
	gfn_t gfn = gpa >> PAGE_SHIFT;
	int seg;
	int offset = offset_in_page(gpa);

	while ((seg = next_segment(len, offset)) != 0) {
		u8 *addr = gfn_to_hva(gfn_to_memslot(kvm, gfn), gfn, false);

		if (!addr)
			return -EFAULT;
		memcpy(data, addr + offset, seg);
		offset = 0;
		len -= seg;
		data = (u8 *)data + seg;
		++gfn;
	}
	return 0;
}

/* kernel: kvm_main.c kvm_write_guest() + __kvm_write_guest_page() +
 * mark_page_dirty_in_slot(): pages before a hole ARE written. */
int kvm_write_guest(struct kvm *kvm, gpa_t gpa, const void *data, unsigned long len)
{
	gfn_t gfn = gpa >> PAGE_SHIFT;
	int seg;
	int offset = offset_in_page(gpa);

	while ((seg = next_segment(len, offset)) != 0) {
		struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gfn);
		u8 *addr = gfn_to_hva(slot, gfn, true);

		if (!addr)
			return -EFAULT;
		memcpy(addr + offset, data, seg);
		if (slot->dirty_bitmap)
			set_bit(gfn - slot->base_gfn, slot->dirty_bitmap);
		offset = 0;
		len -= seg;
		data = (const u8 *)data + seg;
		++gfn;
	}
	return 0;
}

/* kernel: arch/arm64/include/asm/kvm_mmu.h kvm_read_guest_lock()/kvm_write_guest_lock() */
int kvm_read_guest_lock(struct kvm *kvm, gpa_t gpa, void *data, unsigned long len)
{
	int srcu_idx = srcu_read_lock(&kvm->srcu);
	int ret = kvm_read_guest(kvm, gpa, data, len);

	srcu_read_unlock(&kvm->srcu, srcu_idx);
	return ret;
}

int kvm_write_guest_lock(struct kvm *kvm, gpa_t gpa, const void *data, unsigned long len)
{
	int srcu_idx = srcu_read_lock(&kvm->srcu);
	int ret = kvm_write_guest(kvm, gpa, data, len);

	srcu_read_unlock(&kvm->srcu, srcu_idx);
	return ret;
}

/* ------------------------------------------------------------------ */
/* vCPUs                                                               */

/* kernel: include/linux/kvm_host.h kvm_get_vcpu_by_id() */
struct kvm_vcpu *kvm_get_vcpu_by_id(struct kvm *kvm, int id)
{
	struct kvm_vcpu *vcpu = NULL;
	unsigned long i;

	if (id < 0)
		return NULL;
	if (id < KVM_MAX_VCPUS)
		vcpu = kvm_get_vcpu(kvm, id);
	if (vcpu && vcpu->vcpu_id == id)
		return vcpu;
	kvm_for_each_vcpu(i, vcpu, kvm)
		if (vcpu->vcpu_id == id)
			return vcpu;
	return NULL;
}

/* kernel: arch/arm64/kvm/arm.c kvm_mpidr_to_vcpu(), without the mpidr_data
 * fast path (an optimisation with the same result) */
struct kvm_vcpu *kvm_mpidr_to_vcpu(struct kvm *kvm, unsigned long mpidr)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	mpidr &= MPIDR_HWID_BITMASK;
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (mpidr == kvm_vcpu_get_mpidr_aff(vcpu))
			return vcpu;
	}
	return NULL;
}

/* kernel: arch/arm64/kvm/arm.c unlock_vcpus()/unlock_all_vcpus()/lock_all_vcpus()
 * (6.12). Weak, because 6.1 defines them in vgic-kvm-device.c and that
 * (compiled, kernel) definition must win. */
static void kref_unlock_vcpus(struct kvm *kvm, int vcpu_lock_idx)
{
	struct kvm_vcpu *tmp_vcpu;

	for (; vcpu_lock_idx >= 0; vcpu_lock_idx--) {
		tmp_vcpu = kvm_get_vcpu(kvm, vcpu_lock_idx);
		mutex_unlock(&tmp_vcpu->mutex);
	}
}

__attribute__((weak)) void unlock_all_vcpus(struct kvm *kvm)
{
	lockdep_assert_held(&kvm->lock);
	kref_unlock_vcpus(kvm, atomic_read(&kvm->online_vcpus) - 1);
}

__attribute__((weak)) bool lock_all_vcpus(struct kvm *kvm)
{
	struct kvm_vcpu *tmp_vcpu;
	unsigned long c;

	lockdep_assert_held(&kvm->lock);
	kvm_for_each_vcpu(c, tmp_vcpu, kvm) {
		if (!mutex_trylock(&tmp_vcpu->mutex)) {
			kref_unlock_vcpus(kvm, c - 1);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* KVM_MMIO_BUS                                                        */

/* kernel: virt/kvm/kvm_main.c kvm_io_bus_cmp(): with a non-zero device
 * length, a key matches a device when it lies entirely inside it. */
static int kvm_io_bus_cmp(const struct kvm_io_range *r1, const struct kvm_io_range *r2)
{
	gpa_t addr1 = r1->addr;
	gpa_t addr2 = r2->addr;

	if (addr1 < addr2)
		return -1;
	if (r2->len) {
		addr1 += r1->len;
		addr2 += r2->len;
	}
	if (addr1 > addr2)
		return 1;
	return 0;
}

static int kvm_io_bus_sort_cmp(const void *p1, const void *p2)
{
	return kvm_io_bus_cmp(p1, p2);
}

/* kernel: kvm_main.c kvm_io_bus_get_first_dev() */
static int kvm_io_bus_get_first_dev(struct kvm_io_bus *bus, gpa_t addr, int len)
{
	struct kvm_io_range *range, key;
	int off;

	key = (struct kvm_io_range) { .addr = addr, .len = len, };
	range = bsearch(&key, bus->range, bus->dev_count, sizeof(struct kvm_io_range),
			kvm_io_bus_sort_cmp);
	if (range == NULL)
		return -ENOENT;
	off = range - bus->range;
	while (off > 0 && kvm_io_bus_cmp(&key, &bus->range[off - 1]) == 0)
		off--;
	return off;
}

/* kernel: kvm_main.c kvm_io_bus_register_dev() (in place instead of RCU copy) */
int kvm_io_bus_register_dev(struct kvm *kvm, int bus_idx, gpa_t addr, int len,
			    struct kvm_io_device *dev)
{
	struct kvm_io_bus *bus = &kvm->mmio_bus;
	struct kvm_io_range range;
	int i;

	lockdep_assert_held(&kvm->slots_lock);
	if (bus_idx != KVM_MMIO_BUS)
		KREF_DIE("kvm_io_bus_register_dev: only KVM_MMIO_BUS exists");
	if (bus->dev_count > 1000 - 1)	/* NR_IOBUS_DEVS */
		return -ENOSPC;
	if (bus->dev_count == bus->cap) {
		int cap = bus->cap ? 2 * bus->cap : 16;
		struct kvm_io_range *r = realloc(bus->range, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->range = r;
		bus->cap = cap;
	}
	range = (struct kvm_io_range) { .addr = addr, .len = len, .dev = dev, };
	for (i = 0; i < bus->dev_count; i++)
		if (kvm_io_bus_cmp(&bus->range[i], &range) > 0)
			break;
	memmove(bus->range + i + 1, bus->range + i, (bus->dev_count - i) * sizeof(range));
	bus->range[i] = range;
	bus->dev_count++;
	return 0;
}

/* kernel: kvm_main.c kvm_io_bus_unregister_dev() */
int kvm_io_bus_unregister_dev(struct kvm *kvm, int bus_idx, struct kvm_io_device *dev)
{
	struct kvm_io_bus *bus = &kvm->mmio_bus;
	int i;

	lockdep_assert_held(&kvm->slots_lock);
	for (i = 0; i < bus->dev_count; i++)
		if (bus->range[i].dev == dev)
			break;
	if (i == bus->dev_count)
		return 0;
	memmove(bus->range + i, bus->range + i + 1, (bus->dev_count - i - 1) * sizeof(*bus->range));
	bus->dev_count--;
	if (dev->ops->destructor)	/* kernel: kvm_main.c kvm_iodevice_destructor() */
		dev->ops->destructor(dev);
	return 0;
}

/* kernel: kvm_main.c kvm_io_bus_write() + __kvm_io_bus_write() */
int kvm_io_bus_write(struct kvm_vcpu *vcpu, int bus_idx, gpa_t addr, int len, const void *val)
{
	struct kvm_io_bus *bus = &vcpu->kvm->mmio_bus;
	struct kvm_io_range range = { .addr = addr, .len = len, };
	int idx;

	(void)bus_idx;
	idx = kvm_io_bus_get_first_dev(bus, range.addr, range.len);
	if (idx < 0)
		return -EOPNOTSUPP;
	while (idx < bus->dev_count && kvm_io_bus_cmp(&range, &bus->range[idx]) == 0) {
		if (!kvm_iodevice_write(vcpu, bus->range[idx].dev, range.addr, range.len, val))
			return 0;
		idx++;
	}
	return -EOPNOTSUPP;
}

/* kernel: kvm_main.c kvm_io_bus_read() + __kvm_io_bus_read() */
int kvm_io_bus_read(struct kvm_vcpu *vcpu, int bus_idx, gpa_t addr, int len, void *val)
{
	struct kvm_io_bus *bus = &vcpu->kvm->mmio_bus;
	struct kvm_io_range range = { .addr = addr, .len = len, };
	int idx;

	(void)bus_idx;
	idx = kvm_io_bus_get_first_dev(bus, range.addr, range.len);
	if (idx < 0)
		return -EOPNOTSUPP;
	while (idx < bus->dev_count && kvm_io_bus_cmp(&range, &bus->range[idx]) == 0) {
		if (!kvm_iodevice_read(vcpu, bus->range[idx].dev, range.addr, range.len, val))
			return 0;
		idx++;
	}
	return -EOPNOTSUPP;
}

/* kernel: kvm_main.c kvm_io_bus_get_dev() */
struct kvm_io_device *kvm_io_bus_get_dev(struct kvm *kvm, int bus_idx, gpa_t addr)
{
	struct kvm_io_bus *bus = &kvm->mmio_bus;
	int dev_idx;

	(void)bus_idx;
	dev_idx = kvm_io_bus_get_first_dev(bus, addr, 1);
	if (dev_idx < 0)
		return NULL;
	return bus->range[dev_idx].dev;
}

/* kernel: arch/arm64/kvm/mmio.c kvm_mmio_write_buf() / kvm_mmio_read_buf() */
void kvm_mmio_write_buf(void *buf, unsigned int len, unsigned long data)
{
	union { u8 byte; u16 hword; u32 word; u64 dword; } tmp;
	void *datap = NULL;

	switch (len) {
	case 1: tmp.byte = data; datap = &tmp.byte; break;
	case 2: tmp.hword = data; datap = &tmp.hword; break;
	case 4: tmp.word = data; datap = &tmp.word; break;
	case 8: tmp.dword = data; datap = &tmp.dword; break;
	default: KREF_DIE("kvm_mmio_write_buf: bad length");
	}
	memcpy(buf, datap, len);
}

unsigned long kvm_mmio_read_buf(const void *buf, unsigned int len)
{
	unsigned long data = 0;
	union { u16 hword; u32 word; u64 dword; } tmp;

	switch (len) {
	case 1: data = *(const u8 *)buf; break;
	case 2: memcpy(&tmp.hword, buf, len); data = tmp.hword; break;
	case 4: memcpy(&tmp.word, buf, len); data = tmp.word; break;
	case 8: memcpy(&tmp.dword, buf, len); data = tmp.dword; break;
	}
	return data;
}

/* ------------------------------------------------------------------ */
/* stand-in: virt/kvm/kvm_main.c kvm_device_ops_table                  */
static const struct kvm_device_ops *kref_dev_ops[KVM_DEV_TYPE_MAX];

int kvm_register_device_ops(const struct kvm_device_ops *ops, u32 type)
{
	if (type >= ARRAY_SIZE(kref_dev_ops))
		return -ENOSPC;
	if (kref_dev_ops[type] != NULL)
		return -EEXIST;
	kref_dev_ops[type] = ops;
	return 0;
}

void kvm_unregister_device_ops(u32 type)
{
	if (type < ARRAY_SIZE(kref_dev_ops))
		kref_dev_ops[type] = NULL;
}

const struct kvm_device_ops *kref_device_ops(u32 type)
{
	return type < ARRAY_SIZE(kref_dev_ops) ? kref_dev_ops[type] : NULL;
}

/* stand-in: vgic-irqfd.c (irq routing) and vgic-debug.c (debugfs) are not
 * compiled; the default SPI routing and the debugfs file have no effect on
 * the ITS. */
int kvm_vgic_setup_default_irq_routing(struct kvm *kvm) { (void)kvm; return 0; }
void vgic_debug_init(struct kvm *kvm) { (void)kvm; }
void vgic_debug_destroy(struct kvm *kvm) { (void)kvm; }

/* ------------------------------------------------------------------ */
/* stubs: GICv2 (the host is a GICv3 without GICv2 compat), GICv4 and  */
/* host irqchip state (no GICv4: nothing is ever forwarded), CPU       */
/* sysreg uaccess (vgic-sys-reg-v3.c is not compiled).                 */
#define STUB_VOID(fn, ...) void fn(__VA_ARGS__) { KREF_DIE("unexpected call to " #fn); }
#define STUB_INT(fn, ...)  int fn(__VA_ARGS__) { KREF_DIE("unexpected call to " #fn); }
STUB_VOID(vgic_v2_clear_lr, struct kvm_vcpu *vcpu, int lr)
STUB_VOID(vgic_v2_fold_lr_state, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_populate_lr, struct kvm_vcpu *vcpu, struct vgic_irq *irq, int lr)
STUB_VOID(vgic_v2_set_underflow, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_set_vmcr, struct kvm_vcpu *vcpu, struct vgic_vmcr *vmcr)
STUB_VOID(vgic_v2_get_vmcr, struct kvm_vcpu *vcpu, struct vgic_vmcr *vmcr)
STUB_VOID(vgic_v2_enable, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_load, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_put, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_vmcr_sync, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_save_state, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_restore_state, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v2_init_lrs, void)
STUB_INT(vgic_v2_map_resources, struct kvm *kvm)
STUB_INT(vgic_v2_probe, const struct gic_kvm_info *info)
STUB_INT(vgic_v2_has_attr_regs, struct kvm_device *dev, struct kvm_device_attr *attr)
STUB_INT(vgic_v2_cpuif_uaccess, struct kvm_vcpu *vcpu, bool is_write, int offset, u32 *val)
STUB_INT(vgic_v2_dist_uaccess, struct kvm_vcpu *vcpu, bool is_write, int offset, u32 *val)
unsigned int vgic_v2_init_dist_iodev(struct vgic_io_device *dev)
{ KREF_DIE("unexpected call to vgic_v2_init_dist_iodev"); }
STUB_INT(vgic_v3_cpu_sysregs_uaccess, struct kvm_vcpu *vcpu, struct kvm_device_attr *attr, bool is_write)
STUB_INT(vgic_v3_has_cpu_sysregs_attr, struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)

/* kernel: arch/arm64/kvm/vgic/vgic-v4.c vgic_v4_init()/vgic_v4_teardown(),
 * only their !has_gicv4 / no-VPE early exits (the host has no GICv4) */
int vgic_v4_init(struct kvm *kvm)
{
	if (!kvm_vgic_global_state.has_gicv4)
		return 0;
	KREF_DIE("vgic_v4_init with a GICv4");
}

void vgic_v4_teardown(struct kvm *kvm)
{
	if (!kvm->arch.vgic.its_vm.vpes)
		return;
	KREF_DIE("vgic_v4_teardown with VPEs");
}
/* kernel: vgic-v4.c vgic_v4_load()/vgic_v4_put() return 0 without direct MSIs */
int vgic_v4_load(struct kvm_vcpu *vcpu)
{
	if (!vgic_supports_direct_msis(vcpu->kvm))
		return 0;
	KREF_DIE("vgic_v4_load with direct MSIs");
}
int vgic_v4_put(struct kvm_vcpu *vcpu)
{
	if (!vgic_supports_direct_msis(vcpu->kvm))
		return 0;
	KREF_DIE("vgic_v4_put with direct MSIs");
}
STUB_VOID(vgic_v4_commit, struct kvm_vcpu *vcpu)
STUB_VOID(vgic_v4_configure_vsgis, struct kvm *kvm)
STUB_VOID(vgic_v4_get_vlpi_state, struct vgic_irq *irq, bool *val)
STUB_INT(vgic_v4_request_vpe_irq, struct kvm_vcpu *vcpu, int irq)
STUB_INT(its_get_vlpi, int irq, struct its_vlpi_map *map)
STUB_INT(its_map_vlpi, int irq, struct its_vlpi_map *map)
STUB_INT(its_unmap_vlpi, int irq)
STUB_INT(its_prop_update_vlpi, int irq, u8 config, bool inv)
STUB_INT(its_prop_update_vsgi, int irq, u8 priority, bool group)
STUB_INT(its_invall_vpe, struct its_vpe *vpe)
STUB_INT(irq_set_irqchip_state, unsigned int irq, enum irqchip_irq_state which, bool val)
STUB_INT(irq_get_irqchip_state, unsigned int irq, enum irqchip_irq_state which, bool *state)
bool gic_cpuif_has_vsgi(void) { return false; }	/* stand-in: host has no GICv4.1 */
