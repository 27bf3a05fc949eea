# SPDX-License-Identifier: GPL-2.0
#
# vhost-blk top-level build.
#
#   make                     module, selftests and tools for every target kernel
#   make tools               vhostblkctl only (build/tools/vhostblkctl)
#   make e2e                 the end-to-end tests' guest tools (build/e2e)
#   make KVER=<release>      only for one installed kernel
#   make check               the whole test suite in VMs on every target kernel, real QEMU guests too
#   make check-quick         check without the end-to-end tests with real QEMU guests
#   make check-debug         the tests on a KASAN/lockdep/kmemleak kernel, fail-nth sweep
#   make soak                the long lane: big seeded soak and fuzzer
#   make bench               benchmark in a VM, both levels (Documentation/bench.rst)
#   make run                 the main job: build, boot, load, show it working
#   make checkpatch sparse   static checks of the kernel code
#
# Everything built goes to build/<kver>/; nothing is written into the sources.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(TOP)/build

# Debian 6.1 and 6.12: every installed kernel with headers and an image.
KVERS ?= $(shell $(TOP)/scripts/kernels.sh)
ifdef KVER
KVERS := $(KVER)
endif

# LINUX_SOURCE=/path/to/linux-source-X.tar.xz overrides the tarball that
# vhost.h comes from (the build checks that it matches the kernel).
LINUX_SOURCE ?=

CFLAGS_USER := -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread

# Headers generated from Documentation/netlink/specs/vhost-blk.yaml by the
# kernel's YNL generator (scripts/ynl-gen.sh), shared by every kernel and
# the tools: NLGEN/uapi/linux/vhost_blk_nl.h and NLGEN/vhost-blk-nl.h.
NLGEN := $(BUILD)/nl

.PHONY: all nlgen module selftests tools e2e check check-quick check-debug soak bench run checkpatch sparse w1 clean help
all: module selftests tools e2e

help:
	@sed -n '3,17p' $(TOP)/Makefile

nlgen: | $(BUILD)
	@$(TOP)/scripts/ynl-gen.sh $(NLGEN)

module selftests: nlgen | $(BUILD)
	@test -n "$(KVERS)" || { echo "no target kernel found: run scripts/deps.sh"; exit 1; }
	@set -e; for k in $(KVERS); do $(MAKE) -s --no-print-directory -f $(TOP)/mk/kernel.mk \
		TOP=$(TOP) KVER=$$k LINUX_SOURCE=$(LINUX_SOURCE) NLGEN=$(NLGEN) \
		CFLAGS_USER="$(CFLAGS_USER)" $@; done

# Userspace tools are built once, for the host: they talk to every kernel
# through the project's uapi.
tools: nlgen | $(BUILD)
	@echo "  TOOLS"
	@$(MAKE) -s --no-print-directory -C $(TOP)/tools/vhostblkctl \
		OUTPUT=$(BUILD)/tools UAPI_INCLUDES="-I$(TOP)/include/uapi -I$(NLGEN)/uapi" \
		CFLAGS_USER="$(CFLAGS_USER)"

# selftests/e2e's guest tools (static) and its level-2 guest initramfs per kernel.
e2e: | $(BUILD)
	@echo "  E2E"
	@$(MAKE) -s --no-print-directory -C $(TOP)/selftests/e2e OUTPUT=$(BUILD)/e2e \
		CFLAGS_USER="$(CFLAGS_USER)"
	@set -e; for k in $(KVERS); do $(TOP)/selftests/e2e/build-initrd.sh $$k \
		$(BUILD)/$$k/e2e/initrd.gz $(BUILD)/e2e/vblk_pattern; done

check: all
	@E2E=all $(TOP)/scripts/run-tests.sh $(KVERS)

# The same without the end-to-end tests (real QEMU guests, each in its own boot: about half
# of check's time); for iterating, not a substitute for check.
check-quick: all
	@E2E=none $(TOP)/scripts/run-tests.sh $(KVERS)

# The debug-kernel lane (README, "The debug-kernel lane"):
# builds the kernel once (cached in build/debug-kernel/), then the module
# and selftests against it, and runs them on it.
check-debug: nlgen tools | $(BUILD)
	@$(TOP)/scripts/debug-kernel.sh
	@set -e; d=$$($(TOP)/scripts/debug-kernel.sh --print-dir); \
	for t in module selftests; do $(MAKE) -s --no-print-directory -f $(TOP)/mk/kernel.mk \
		TOP=$(TOP) KVER=$$(cat $$d/kernel.release) KDIR=$$d/obj LINUX_SOURCE=$(LINUX_SOURCE) \
		NLGEN=$(NLGEN) CFLAGS_USER="$(CFLAGS_USER)" $$t; done; \
	$(TOP)/scripts/check-debug.sh $$d

# The long lane: a 300,000-request soak and 100,000-chain fuzzer (~15 min).
soak: all
	@$(TOP)/scripts/soak.sh $(KVERS)

# Not part of check: ~15 minutes per kernel, and the numbers need a quiet host.
bench: all
	@$(TOP)/scripts/bench.sh $(KVERS)

run: all
	@$(TOP)/scripts/demo.sh $(lastword $(KVERS))

checkpatch sparse w1: nlgen | $(BUILD)
	@set -e; for k in $(KVERS); do $(MAKE) -s --no-print-directory -f $(TOP)/mk/kernel.mk \
		TOP=$(TOP) KVER=$$k LINUX_SOURCE=$(LINUX_SOURCE) NLGEN=$(NLGEN) $@; done

$(BUILD):
	@mkdir -p $@

clean:
	rm -rf $(BUILD)
