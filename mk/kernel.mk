# SPDX-License-Identifier: GPL-2.0
# Build for one kernel (KVER), called by the top-level Makefile.

B := $(TOP)/build/$(KVER)
# KDIR: a kernel build tree of one's own (scripts/debug-kernel.sh's).
KDIR ?= /lib/modules/$(KVER)/build
KBUILD := $(KDIR)
KMAKE = $(MAKE) -C $(KBUILD) M=$(B)/kernel VHOST_BLK_TOP=$(TOP) \
	VHOST_SRC=$(B)/src/drivers/vhost CONFTEST=$(B)/conftest NLGEN=$(NLGEN)

.PHONY: prep module selftests checkpatch sparse w1 link

prep:
	@KDIR=$(KDIR) $(TOP)/scripts/kernel-prep.sh $(KVER) $(B) $(LINUX_SOURCE)

# kbuild writes next to its sources: build from links in build/<kver>/kernel.
link: prep
	@mkdir -p $(B)/kernel
	@ln -sf $(TOP)/kernel/*.c $(TOP)/kernel/*.h $(TOP)/kernel/Kbuild $(B)/kernel/

module: link
	@echo "  MODULE  $(KVER)"
	@$(KMAKE) modules

selftests: prep
	@echo "  SELFTESTS $(KVER)"
	@$(MAKE) -s -C $(TOP)/selftests/vhost_blk OUTPUT=$(B)/selftests/vhost_blk \
		KSFT_DIR=$(B)/src/tools/testing/selftests \
		UAPI_INCLUDES="-I$(TOP)/include/uapi -I$(B)/uapi -I$(NLGEN)/uapi" \
		CFLAGS_USER="$(CFLAGS_USER)"
	@$(MAKE) -s -C $(TOP)/selftests/bench OUTPUT=$(B)/bench \
		UAPI_INCLUDES="-I$(TOP)/include/uapi -I$(B)/uapi" \
		CFLAGS_USER="$(CFLAGS_USER)"

checkpatch: prep
	@echo "  CHECKPATCH --strict ($(KVER))"
	@cd $(TOP) && $(B)/src/scripts/checkpatch.pl --strict --no-tree --terse \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
		-f kernel/*.c kernel/*.h kernel/conftest/*.c include/uapi/linux/vhost_blk.h

sparse: link
	@echo "  SPARSE  $(KVER)"
	@touch $(B)/kernel/*.c
	@$(KMAKE) C=1 CHECK=sparse modules 2>&1 | tee $(B)/sparse.log
	@! grep -E "warning|error" $(B)/sparse.log

w1: link
	@echo "  W=1     $(KVER)"
	@touch $(B)/kernel/*.c
	@$(KMAKE) W=1 modules 2>&1 | tee $(B)/w1.log
	@! grep -E "warning|error" $(B)/w1.log
