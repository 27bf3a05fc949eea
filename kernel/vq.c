// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: virtqueue processing. The kick handler fetches requests and
 * submits their bios under a plug; bios end in any context and hand their
 * request to the queue's completion work, which publishes a batch to the
 * used ring with one call-eventfd signal. Requests that end while the kick
 * handler submits are published by the handler itself, in one batch too.
 * With a busyloop timeout set, the handler spins on the empty avail ring a
 * little before it waits for the next kick.
 */
#include "vhost_blk.h"

#include <linux/memcontrol.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>

static void vhost_blk_complete_work_fn(struct vhost_work *work);

/*
 * What the worker allocates for a request (bounce pages, copies of its
 * iovecs) is the owner's and charged to the owner's memory cgroup
 * (__GFP_ACCOUNT). A kthread worker (6.1's, and 6.12's with
 * inherit_owner=0) is charged nothing by __GFP_ACCOUNT alone: the memory
 * controller bypasses kthreads unless a memcg is made active, as here.
 * Returns the memcg to pass to vhost_blk_owner_memcg_end() with *@old.
 */
static struct mem_cgroup *vhost_blk_owner_memcg_begin(struct vhost_dev *dev,
						      struct mem_cgroup **old)
{
	struct mem_cgroup *memcg = get_mem_cgroup_from_mm(dev->mm);

	*old = set_active_memcg(memcg);
	return memcg;
}

static void vhost_blk_owner_memcg_end(struct mem_cgroup *memcg,
				      struct mem_cgroup *old)
{
	set_active_memcg(old);
	mem_cgroup_put(memcg);
}

void vhost_blk_vq_init(struct vhost_blk_vq *bvq)
{
	init_llist_head(&bvq->ended);
	bvq->submitter = NULL;
	atomic_set(&bvq->inflight, 0);
	vhost_work_init(&bvq->complete_work, vhost_blk_complete_work_fn);
	vhost_blk_vq_init_dirtying(bvq);
}

/*
 * Size the request table from the ring. A ring holds at most vq->num
 * requests at once from an honest guest; a hostile one that recycles heads
 * finds the table empty and waits for completions (see @starved).
 *
 * Context: vq->mutex held, queue stopped and drained.
 */
int vhost_blk_vq_alloc_reqs(struct vhost_blk_vq *bvq)
{
	unsigned int i, num = bvq->vq.num;

	lockdep_assert_held(&bvq->vq.mutex);

	if (bvq->reqs && bvq->nr_reqs == num)
		goto reset_free_list;

	vhost_blk_vq_free_reqs(bvq);
	bvq->reqs = kvcalloc(num, sizeof(*bvq->reqs), GFP_KERNEL_ACCOUNT);
	bvq->used = kvcalloc(num, sizeof(*bvq->used), GFP_KERNEL_ACCOUNT);
	if (!bvq->reqs || !bvq->used) {
		vhost_blk_vq_free_reqs(bvq);
		return -ENOMEM;
	}
	bvq->nr_reqs = num;
	for (i = 0; i < num; i++)
		vhost_blk_file_req_init(&bvq->reqs[i]);

reset_free_list:
	bvq->free_reqs = NULL;
	for (i = 0; i < num; i++) {
		bvq->reqs[i].bvq = bvq;
		bvq->reqs[i].next_free = bvq->free_reqs;
		bvq->free_reqs = &bvq->reqs[i];
	}
	bvq->starved = false;
	return 0;
}

void vhost_blk_vq_free_reqs(struct vhost_blk_vq *bvq)
{
	WARN_ON_ONCE(atomic_read(&bvq->inflight));
	kvfree(bvq->reqs);
	kvfree(bvq->used);
	bvq->reqs = NULL;
	bvq->used = NULL;
	bvq->free_reqs = NULL;
	bvq->nr_reqs = 0;
}

static struct vhost_blk_req *vhost_blk_req_alloc(struct vhost_blk_vq *bvq)
{
	struct vhost_blk_req *req = bvq->free_reqs;

	if (req)
		bvq->free_reqs = req->next_free;
	return req;
}

static void vhost_blk_req_free(struct vhost_blk_vq *bvq,
			       struct vhost_blk_req *req)
{
	req->next_free = bvq->free_reqs;
	bvq->free_reqs = req;
}

/*
 * The request has ended: its last bio has ended (or it needed no I/O).
 * Hand it to the queue's completion work, or leave it to the kick handler
 * when it ended inside that handler's own submission. Called once per
 * submission, any context.
 */
void vhost_blk_req_ended(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *bvq = req->bvq;

	llist_add(&req->ended_node, &bvq->ended);
	/*
	 * Ended within the queue's own kick handler (a device that ends bios
	 * as they are submitted, such as brd, or a request without I/O): the
	 * handler completes it before it returns. Only that thread (or an
	 * interrupt on its CPU, which the handler sees in program order) can
	 * find itself in @submitter. A dead worker is covered by the drain,
	 * which runs after inflight.
	 */
	if (READ_ONCE(bvq->submitter) != current)
		vhost_blk_queue_work(&bvq->vq, &bvq->complete_work);
	/* Last access to @bvq: the drain may free it once this reaches 0. */
	if (atomic_dec_and_test(&bvq->inflight))
		wake_up_var(&bvq->inflight);
}

/*
 * Complete every ended request: release what it holds and, if @publish,
 * write its status byte and add it to the used ring, all in one batch, then
 * signal. A request with more to do is submitted again instead.
 *
 * Context: process context with the owner's mm when @publish, vq->mutex held.
 */
static void vhost_blk_vq_complete_ended(struct vhost_blk *blk,
					struct vhost_blk_vq *bvq, bool publish)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_blk_req *req, *tmp;
	struct llist_node *list;
	unsigned int n = 0;

	lockdep_assert_held(&vq->mutex);

	list = llist_reverse_order(llist_del_all(&bvq->ended));
	llist_for_each_entry_safe(req, tmp, list, ended_node) {
		/* Submitted again: it ends again later. */
		if (vhost_blk_req_retry_zeroes(req) ||
		    vhost_blk_req_next_window(req, publish))
			continue;
		vhost_blk_req_release(req, publish);
		vhost_blk_cache_flush_done(blk, req);
		vhost_blk_stat_completed(&bvq->stats, &req->stat, req->status);
		if (publish) {
			if (req->status_ptr &&
			    put_user(req->status, req->status_ptr))
				vq_err(vq, "Faulted on writing status of head %u\n",
				       req->head);
			bvq->used[n].id = cpu_to_vhost32(vq, req->head);
			bvq->used[n].len = cpu_to_vhost32(vq, req->used_len);
			n++;
		}
		vhost_blk_req_free(bvq, req);
	}

	if (n) {
		if (vhost_add_used_n(vq, bvq->used, n))
			vq_err(vq, "Faulted on updating the used ring\n");
		vhost_signal(&blk->dev, vq);
		vhost_blk_stat_signalled(&bvq->stats, n);
	}

	/* Entries or bounce pages were freed: fetch again. */
	if (bvq->starved && list) {
		bvq->starved = false;
		vhost_poll_queue(&vq->poll);
	}
}

static void vhost_blk_complete_work_fn(struct vhost_work *work)
{
	struct vhost_blk_vq *bvq = container_of(work, struct vhost_blk_vq,
						complete_work);
	struct vhost_blk *blk = container_of(bvq->vq.dev, struct vhost_blk,
					     dev);
	struct mem_cgroup *memcg, *old;

	/* Completing may submit again (a write-zeroes retry). */
	memcg = vhost_blk_owner_memcg_begin(&blk->dev, &old);
	mutex_lock(&bvq->vq.mutex);
	vhost_blk_vq_complete_ended(blk, bvq, true);
	mutex_unlock(&bvq->vq.mutex);
	vhost_blk_owner_memcg_end(memcg, old);
}

/*
 * Wait for every request of a stopped queue to end and complete it. The
 * worker normally publishes them; if it is gone, publish here when the caller
 * runs in the owner's address space (an ioctl), else just release them: the
 * owner's memory is going away (close at exit).
 *
 * Context: process context, dev.mutex held, the queue's backend cleared or
 * the queue paused.
 */
void vhost_blk_vq_drain(struct vhost_blk *blk, struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;

	/* Completing may submit a request again (a write-zeroes retry). */
	do {
		wait_var_event(&bvq->inflight, !atomic_read(&bvq->inflight));
		/* Requests end after their pages: let the work return. */
		vhost_blk_flush_dirtying(bvq);
		vhost_dev_flush(&blk->dev);

		mutex_lock(&vq->mutex);
		vhost_blk_vq_complete_ended(blk, bvq, current->mm &&
					    current->mm == blk->dev.mm);
		mutex_unlock(&vq->mutex);
	} while (atomic_read(&bvq->inflight));
}

/*
 * The longest a kick handler call busy-polls the avail ring, in all, in
 * microseconds, whatever the VMM asked with VHOST_SET_VRING_BUSYLOOP_TIMEOUT
 * (vhost-net takes the value as given). The poll holds vq->mutex, so a
 * pause, detach or memory-table change waits for it, and on a busy machine
 * it keeps a CPU from others until need_resched(): a VMM's mistake (or
 * UINT_MAX) must not turn into seconds of either. 1 ms is ten times the
 * slowest request worth polling for (an SSD's ~100 us) and, like a
 * scheduler tick, short enough that nobody waits on it noticeably.
 */
#define VHOST_BLK_BUSYLOOP_MAX_US	1000

/*
 * Fetch and submit requests until the avail ring is empty (returns true)
 * or something else stops the queue: a budget or the request table is
 * exhausted, a chain is broken or the kick's weight is used up (false).
 * @reqs and @bytes add up over the whole kick, so the weight bounds it.
 *
 * Context: kick handler, vq->mutex held, notifications disabled.
 */
static bool vhost_blk_vq_submit_avail(struct vhost_blk *blk,
				      struct vhost_blk_vq *bvq,
				      struct vhost_blk_disk *disk,
				      int *reqs, size_t *bytes)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	ssize_t moved;

	do {
		struct vhost_blk_req *req;
		unsigned int out, in;
		int head;

		req = vhost_blk_req_alloc(bvq);
		if (!req) {
			/* Completions free entries and requeue us. */
			bvq->starved = true;
			return false;
		}

		head = vhost_get_vq_desc(vq, vq->iov, ARRAY_SIZE(vq->iov),
					 &out, &in, NULL, NULL);
		if (unlikely(head < 0)) {
			/*
			 * A broken chain (loop, bad address, too long): the
			 * core reported it on the error eventfd. We cannot
			 * tell where its status byte is; the queue stays
			 * stopped until the VMM resets it, as virtio asks
			 * (DEVICE_NEEDS_RESET).
			 */
			vhost_blk_req_free(bvq, req);
			return false;
		}
		if (head == vq->num) {
			vhost_blk_req_free(bvq, req);
			return true;
		}

		req->head = head;
		atomic_inc(&bvq->inflight);
		moved = vhost_blk_req_submit(blk, disk, req, out, in);
		if (moved < 0) {
			/* Over a budget: put it back, retry on completions. */
			atomic_dec(&bvq->inflight);
			vhost_blk_req_free(bvq, req);
			vhost_discard_vq_desc(vq, 1);
			bvq->starved = true;
			return false;
		}
		*bytes += moved;
		vhost_blk_stat_submitted(&bvq->stats);
	} while (!vhost_exceeds_weight(vq, ++*reqs, *bytes));
	return false;
}

/*
 * With a busyloop timeout set, spin on the empty avail ring before paying
 * for a notification: at low queue depth the guest's next request often
 * comes a few microseconds after the last completion, and finding it here
 * saves the kick's wake-up. Requests that end in this thread meanwhile (a
 * synchronous device such as brd, a completion softirq on this CPU) are
 * published as they end, since the guest may wait for them before it sends
 * more. The spin stops at once for anything with a better claim on the CPU
 * or the worker: the scheduler, another task runnable on this CPU (as KVM's
 * halt-polling: often the very thread that submits the guest's next
 * request, woken by our signal but not preempting us), a signal (the owner
 * dies), other work for this worker (another queue's kick; a request
 * ending on another CPU queues our completion work, which publishes it). The queue cannot
 * be paused or detached meanwhile: that takes vq->mutex, held here. Time
 * spent comes out of @budget_ns, the kick's total (VHOST_BLK_BUSYLOOP_MAX_US).
 * Returns true when the ring has entries again.
 *
 * Context: kick handler, vq->mutex held, notifications disabled, no plug.
 */
static bool vhost_blk_vq_busy_poll(struct vhost_blk *blk,
				   struct vhost_blk_vq *bvq, u64 *budget_ns)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	u64 limit, start, spent;
	bool found = false;

	limit = min_t(u64, vq->busyloop_timeout, VHOST_BLK_BUSYLOOP_MAX_US);
	limit = min(limit * NSEC_PER_USEC, *budget_ns);
	if (!limit)
		return false;

	/* local_clock() as vhost-net: cheap, and a small skew is harmless. */
	start = local_clock();
	do {
		if (!llist_empty(&bvq->ended))
			vhost_blk_vq_complete_ended(blk, bvq, true);
		if (!vhost_vq_avail_empty(&blk->dev, vq)) {
			found = true;
			break;
		}
		if (need_resched() || !single_task_running() ||
		    signal_pending(current) || vhost_blk_has_work(vq))
			break;
		cpu_relax();
		spent = local_clock() - start;
	} while (spent < limit);

	spent = local_clock() - start;
	*budget_ns -= min(spent, *budget_ns);
	return found;
}

void vhost_blk_handle_kick(struct vhost_work *work)
{
	struct vhost_virtqueue *vq = container_of(work, struct vhost_virtqueue,
						  poll.work);
	struct vhost_blk_vq *bvq = container_of(vq, struct vhost_blk_vq, vq);
	struct vhost_blk *blk = container_of(vq->dev, struct vhost_blk, dev);
	u64 poll_budget_ns = VHOST_BLK_BUSYLOOP_MAX_US * NSEC_PER_USEC;
	struct mem_cgroup *memcg, *old;
	struct vhost_blk_disk *disk;
	struct blk_plug plug;
	size_t bytes = 0;
	int reqs = 0;
	bool empty;

	memcg = vhost_blk_owner_memcg_begin(&blk->dev, &old);
	mutex_lock(&vq->mutex);
	disk = vhost_vq_get_backend(vq);
	if (!disk || bvq->paused)
		goto out;
	if (!vq_meta_prefetch(vq))
		goto out;
	vhost_blk_stat_kick(&bvq->stats);

	vhost_disable_notify(&blk->dev, vq);
	WRITE_ONCE(bvq->submitter, current);
	for (;;) {
		blk_start_plug(&plug);
		empty = vhost_blk_vq_submit_avail(blk, bvq, disk, &reqs,
						  &bytes);
		/* Unplugged: the device works on them while we poll. */
		blk_finish_plug(&plug);
		if (!empty)
			break;
		if (vhost_blk_vq_busy_poll(blk, bvq, &poll_budget_ns))
			continue;
		if (likely(!vhost_enable_notify(&blk->dev, vq)))
			break;
		/* Raced with the guest: fetch again, as one more request. */
		vhost_disable_notify(&blk->dev, vq);
		if (vhost_exceeds_weight(vq, ++reqs, bytes))
			break;
	}
	/*
	 * What ended above was not handed to the completion work: publish it
	 * now, without another round through the worker.
	 */
	WRITE_ONCE(bvq->submitter, NULL);
	if (!llist_empty(&bvq->ended))
		vhost_blk_vq_complete_ended(blk, bvq, true);
out:
	mutex_unlock(&vq->mutex);
	vhost_blk_owner_memcg_end(memcg, old);
}
