// SPDX-License-Identifier: GPL-2.0
/*
 * its_wrap.c -- compiles the kernel's vgic-its.c, unchanged, in one translation
 * unit with the two accessors that need its static functions and private
 * structs (struct its_device / its_ite / its_collection). This is the only
 * harness code that depends on vgic-its.c's private layout.
 */
#include "vgic-its.c"
#include "harness.h"

int h_its_exec_cmd(struct kvm_device *dev, const uint64_t cmd[4])
{
	struct vgic_its *its = dev->private;
	u64 c[4];
	int ret;

	memcpy(c, cmd, sizeof(c));
	/* vgic_mmio_write_its_cwriter() -> vgic_its_process_commands() hold cmd_lock */
	mutex_lock(&its->cmd_lock);
	ret = vgic_its_handle_command(dev->kvm, its, c);
	mutex_unlock(&its->cmd_lock);
	return ret;
}

/*
 * One record per line, fields separated by single spaces, numbers in decimal
 * unless 0x-prefixed:
 *   S enabled cbaser creadr cwriter baser_device baser_coll abi_rev
 *   D devid num_eventid_bits itt_addr
 *   E devid eventid intid icid            (icid -1: ITE without collection)
 *   C icid target                         (target -1: COLLECTION_NOT_MAPPED)
 *   T devid eventid intid                 (translation cache entry)
 */
int h_its_dump(struct kvm_device *dev, char *buf, int len)
{
	struct vgic_its *its = dev->private;
	struct its_device *d;
	struct its_ite *ite;
	struct its_collection *c;
	int n = 0;

#define OUT(...) do { if (n < len) n += snprintf(buf + n, len - n, __VA_ARGS__); else n = len; } while (0)
	mutex_lock(&its->its_lock);
	OUT("S %d 0x%llx %u %u 0x%llx 0x%llx %u\n", its->enabled,
	    (unsigned long long)its->cbaser, its->creadr, its->cwriter,
	    (unsigned long long)its->baser_device_table,
	    (unsigned long long)its->baser_coll_table, its->abi_rev);
	list_for_each_entry(d, &its->device_list, dev_list) {
		OUT("D %u %u 0x%llx\n", d->device_id, d->num_eventid_bits,
		    (unsigned long long)d->itt_addr);
		list_for_each_entry(ite, &d->itt_head, ite_list)
			OUT("E %u %u %u %d\n", d->device_id, ite->event_id,
			    ite->irq ? ite->irq->intid : 0,
			    ite->collection ? (int)ite->collection->collection_id : -1);
	}
	list_for_each_entry(c, &its->collection_list, coll_list)
		OUT("C %u %d\n", c->collection_id,
		    c->target_addr == COLLECTION_NOT_MAPPED ? -1 : (int)c->target_addr);
#ifdef LPI_XA_MARK_DEBUG_ITER	/* 6.12: per-ITS xarray keyed by vgic_its_cache_key() */
	{
		unsigned long key;
		struct vgic_irq *irq;

		xa_for_each(&its->translation_cache, key, irq)
			OUT("T %lu %lu %u\n", key >> VITS_TYPER_IDBITS,
			    key & GENMASK(VITS_TYPER_IDBITS - 1, 0), irq->intid);
	}
#else				/* 6.1: per-VM LRU list; entries carry their doorbell */
	{
		struct vgic_translation_cache_entry *cte;

		list_for_each_entry(cte, &dev->kvm->arch.vgic.lpi_translation_cache, entry)
			if (cte->irq && cte->db == its->vgic_its_base + GITS_TRANSLATER)
				OUT("T %u %u %u\n", cte->devid, cte->eventid, cte->irq->intid);
	}
#endif
	mutex_unlock(&its->its_lock);
#undef OUT
	return n < len ? n : -ENOSPC;
}
