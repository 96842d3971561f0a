"""The DataLoader every task runs: batches of a task dataset, and, with workers, their hand-off through shared
memory that stays mapped.

Paddle sends a worker's batch to the main process by pickling it: each array into a new shared-memory file
(``use_shared_memory=False`` with tensors) or through a pipe (numpy). Either way every batch is written once more,
into memory the kernel has to find and zero first, which took more of a worker's time than building the batch.
Here the main process maps ``SLOTS_PER_WORKER`` slots of shared memory per worker before the workers fork; a worker
builds its batch straight into a free slot of its own (the collator's ``empty``) and sends only where each array
lies. The main process makes tensors on those bytes without a copy (on an accelerator: copies them to the device),
and a slot is free again when the last tensor on it is gone. A batch that finds no free slot, or does not fit one,
takes Paddle's way, with the same bytes.
"""

import mmap
import os
import weakref

import numpy as np
import paddle
from paddle.io import DataLoader

from .. import lifetime

SLOTS_PER_WORKER = 4  # a worker's batches out at once: Paddle's prefetch (2) and the ones the consumer still holds
SLOT_BYTES = 256 << 20  # most bytes one batch's arrays take in a slot (address space; only what is written is used)
_ALIGN = 64  # bytes: where each array of a slot starts
_SLOT = "_shared_slot"  # batch key: the slot a worker wrote the batch into (a one-element int64 array)
_FREE, _HELD = 0, -1  # slot states; a worker writing a slot marks it with its pid


class BatchLoader:
    """Batches of ``dataset`` collated by ``collator``, built by ``num_workers`` DataLoader workers (0: in a thread
    of this process), each batch as a dict of tensors (ids such as ``question_id`` as Paddle hands them over).

    ``iterate(batches)`` makes one pass over a list of index batches, with new workers each pass (the dataset's
    ``set_epoch`` reaches them). The shared memory stays with the loader from one pass to the next, so use one
    ``BatchLoader`` for a whole run; a pass left before its end (its workers may still be writing) leaves its slots
    behind, and the next pass maps new ones.

    Args:
        dataset: a map-style dataset of examples (``TaskDataset``).
        collator: makes a batch from examples; called as ``collator(examples, empty=...)`` (``VisualBertCollator``).
        num_workers: DataLoader worker processes.
    """

    def __init__(self, dataset, collator, num_workers: int = 0):
        self.dataset = dataset
        self.num_workers = num_workers
        self.collate = _WorkerCollate(collator)
        self._passing = False  # a pass started and has not reached its end

    def iterate(self, batches: list[list[int]]):
        """Yield the batch of each index list in ``batches``, in order."""
        loader = DataLoader(
            self.dataset,
            batch_sampler=_Batches(batches),
            collate_fn=self.collate,
            use_shared_memory=False,  # tensors Paddle sends still go through shared memory, in one copy
            num_workers=self.num_workers,
            worker_init_fn=lifetime.worker_init_fn() if self.num_workers > 0 else None,  # workers end with us
            return_list=True,
        )
        if self.num_workers > 0:
            self._prepare_slots()  # before the workers fork
        self._passing = True
        slots = self.collate.slots
        for batch in loader:
            yield slots.receive(batch) if _SLOT in batch else batch
        # Paddle has joined the workers: no one writes the slots until the next pass's workers start.
        self._passing = False

    def _prepare_slots(self):
        slots = self.collate.slots
        if slots is None or self._passing or slots.num_workers != self.num_workers:
            self.collate.slots = SharedSlots.create(self.num_workers)
        else:
            slots.reclaim()


class _Batches(paddle.io.Sampler):
    """A fixed list of index batches."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class SharedSlots:
    """``num_workers * slots_per_worker`` slots of ``slot_bytes`` in one shared mapping (a memfd: no file under
    /dev/shm to leak, gone when the last process mapping it ends), and one state per slot in another: free, held by
    the main process, or the pid of the worker writing it. Worker ``i`` writes only slots
    ``[i * slots_per_worker, (i + 1) * slots_per_worker)``.
    """

    def __init__(self, num_workers: int, slots_per_worker: int, slot_bytes: int):
        self.num_workers, self.slots_per_worker, self.slot_bytes = num_workers, slots_per_worker, slot_bytes
        count = num_workers * slots_per_worker
        self.memory = _shared_mapping(count * slot_bytes)
        self.state = np.frombuffer(_shared_mapping(8 * count), dtype=np.int64)

    @classmethod
    def create(cls, num_workers: int, slots_per_worker: int = SLOTS_PER_WORKER, slot_bytes: int = SLOT_BYTES):
        """New slots, or None where shared memory cannot be mapped (batches then take Paddle's way)."""
        try:
            return cls(num_workers, slots_per_worker, slot_bytes)
        except (AttributeError, OSError):  # no os.memfd_create off Linux; address space refused
            return None

    # ---- in a worker ---------------------------------------------------------------------------------------------

    def claim(self, worker_id: int) -> int | None:
        """A free slot of worker ``worker_id``, now marked as this process's, or None."""
        first = worker_id * self.slots_per_worker
        for slot in range(first, first + self.slots_per_worker):
            if self.state[slot] == _FREE:
                self.state[slot] = os.getpid()
                return slot
        return None

    def release(self, slot: int) -> None:
        self.state[slot] = _FREE

    def arena(self, slot: int) -> "_Arena":
        return _Arena(self.memory, slot * self.slot_bytes, self.slot_bytes)

    # ---- in the main process -------------------------------------------------------------------------------------

    def receive(self, batch: dict) -> dict:
        """A batch a worker wrote into a slot, its arrays as tensors on the slot (copies on an accelerator)."""
        slot = int(batch.pop(_SLOT).numpy()[0])
        self.state[slot] = _HELD
        lease = np.frombuffer(self.memory, np.uint8, self.slot_bytes, slot * self.slot_bytes).view(_Lease)
        weakref.finalize(lease, self.state.__setitem__, slot, _FREE)
        on_cpu = paddle.get_device() == "cpu"
        for key, value in batch.items():
            if isinstance(value, _InSlot):
                array = value.view(lease)
                batch[key] = paddle.utils.dlpack.from_dlpack(array) if on_cpu else paddle.to_tensor(array)
        return batch

    def reclaim(self) -> None:
        """Free the slots written by workers that have ended without their batch reaching the consumer; call only
        when no worker of this mapping is running."""
        self.state[self.state > 0] = _FREE


def _shared_mapping(size: int) -> mmap.mmap:
    fd = os.memfd_create("visualbert-batches", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size)  # shared; pages are allocated where written
    finally:
        os.close(fd)  # the mapping keeps the memory


class _Lease(np.ndarray):
    """A slot's bytes in the main process. Every array on the slot is a view of this object (numpy keeps a subclass
    as the base of a plain view), so it lives as long as any of them; its finalizer frees the slot."""


class _InSlot:
    """Where one array of a batch lies in its slot."""

    __slots__ = ("offset", "dtype", "shape")

    def __init__(self, offset: int, dtype: str, shape: tuple):
        self.offset, self.dtype, self.shape = offset, dtype, shape

    def view(self, lease: _Lease) -> np.ndarray:
        dtype = np.dtype(self.dtype)
        size = int(np.prod(self.shape)) * dtype.itemsize
        return lease[self.offset : self.offset + size].view(np.ndarray).view(dtype).reshape(self.shape)


class _SlotFull(Exception):
    pass


class _Arena:
    """Hands out the arrays of one batch from a slot, one after the other."""

    def __init__(self, memory: mmap.mmap, start: int, size: int):
        self.bytes = np.frombuffer(memory, np.uint8, size, start)
        self.used = 0
        self.placed = {}  # id(array) -> (array, offset); holding the array keeps its id from being reused

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        if size == 0:  # Paddle sends a zero-size tensor without its shape: it stays numpy
            return np.empty(shape, dtype)
        offset = -(-self.used // _ALIGN) * _ALIGN
        if offset + size > len(self.bytes):
            raise _SlotFull
        self.used = offset + size
        array = self.bytes[offset : offset + size].view(dtype).reshape(shape)
        self.placed[id(array)] = (array, offset)
        return array

    def describe(self, value):
        """An ``_InSlot`` for an array this arena made, else ``value`` itself."""
        placed = self.placed.get(id(value))
        return value if placed is None else _InSlot(placed[1], value.dtype.str, value.shape)


class _WorkerCollate:
    """The collate_fn of a ``BatchLoader``'s DataLoader. In a worker it builds the batch into a slot of ``slots``
    and returns where its arrays lie, or, without a slot, returns the arrays as tensors sharing their memory
    (DLPack), which Paddle sends in one copy. In the reader thread of ``num_workers=0`` the batch stays numpy."""

    def __init__(self, collator):
        self.collator = collator
        self.slots = None  # set by BatchLoader before each pass's workers fork

    def __getstate__(self):
        # a worker started by spawn or forkserver gets a pickled copy: it cannot share this process's mapping
        return {"collator": self.collator, "slots": None}

    def __call__(self, examples: list[dict]) -> dict:
        worker = paddle.io.get_worker_info()
        if worker is None:
            return self.collator(examples)
        slot = self.slots.claim(worker.id) if self.slots is not None else None
        if slot is None:
            return _as_tensors(self.collator(examples))
        arena = self.slots.arena(slot)
        try:
            batch = self.collator(examples, empty=arena.empty)
        except _SlotFull:
            self.slots.release(slot)
            return _as_tensors(self.collator(examples))
        except BaseException:
            self.slots.release(slot)
            raise
        if not arena.placed:  # a batch carrying a data error
            self.slots.release(slot)
            return _as_tensors(batch)
        batch = {key: _as_tensor(arena.describe(value)) for key, value in batch.items()}
        return {_SLOT: np.array([slot], dtype=np.int64), **batch}


def _as_tensors(batch: dict) -> dict:
    return {key: _as_tensor(value) for key, value in batch.items()}


def _as_tensor(value):
    # Never with use_shared_memory=True: Paddle then keeps only borrowed references to a worker's tensors while it
    # sends them. An empty array would arrive as float32 [0] (Paddle pickles it without shape or dtype).
    if isinstance(value, np.ndarray) and value.size:
        return paddle.utils.dlpack.from_dlpack(value)
    return value
