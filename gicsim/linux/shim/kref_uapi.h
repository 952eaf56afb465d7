/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kref_uapi.h -- the KVM userspace ABI the vgic files use. Nothing is typed in
 * by hand: build.py generates kref_gen_uapi.h from the kernel tree's
 * include/uapi/linux/kvm.h (struct kvm_msi, struct kvm_device_attr,
 * enum kvm_device_type, KVM_MSI_VALID_DEVID) and arch/arm64/include/uapi/asm/kvm.h
 * (the KVM_DEV_ARM_* / KVM_VGIC_* / KVM_ARM_DEVICE_* constants).
 */
#ifndef KREF_UAPI_H
#define KREF_UAPI_H
#include "kref_base.h"
#include "kref_gen_uapi.h"
#endif
