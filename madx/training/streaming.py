"""A streamed corpus for MLM: blocks made as a hub dataset is read, never the whole corpus on disk or in memory.

The stream's first blocks are held out (heldout_count of the blocks the step budget reads: a stream's length is
not known before it ends); training reads the rest, epoch after epoch, each through a shuffle buffer seeded by
(seed, epoch). A step's batch is then a function of (seed, step), as it is for a file (batching.py): a resumed run
reads the stream again from its start up to the step's position (tokenizing, not training) and goes on with the
batches an uninterrupted run takes.
"""

from __future__ import annotations

import collections
import itertools
import logging
from typing import Callable, Iterator

import numpy as np
import torch

from ..core.settings import LangTraining
from ..core.sources import DataError
from .mlm import heldout_count, masked_batch

log = logging.getLogger(__name__)
SHUFFLE_BUFFER = 10_000  # blocks: the stream is shuffled within this many at a time


def buffer_shuffled(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """`items` in an order drawn by `rng` with at most `size` of them held: each new one takes the place of one
    drawn from the buffer; the last `size` come out in a random order."""
    buffer = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = int(rng.integers(size))
        yield buffer[slot]
        buffer[slot] = item
    rng.shuffle(buffer)
    yield from buffer


def planned_heldout(settings: LangTraining) -> int:
    """Held-out blocks of a streamed corpus: heldout_count of the blocks training reads (its steps x batch, or
    the blocks max_tokens makes when fewer)."""
    planned = settings.max_steps * settings.batch_size
    if settings.max_tokens and not settings.line_by_line:
        planned = min(planned, settings.max_tokens // (settings.seq_len - 2))
    return heldout_count(planned)


class StreamedCorpus:
    """The blocks of a stream (`open_blocks()` reads it again from its start), its first n_heldout held out."""

    def __init__(self, open_blocks: Callable[[], Iterator[np.ndarray]], n_heldout: int, seq_len: int, seed: int,
                 name: str, buffer: int = SHUFFLE_BUFFER):
        self.open_blocks, self.n_heldout, self.seed, self.name, self.buffer = open_blocks, n_heldout, seed, name, buffer
        held = list(itertools.islice(open_blocks(), n_heldout))
        self.heldout = np.stack(held) if held else np.zeros((0, seq_len), dtype=np.int32)
        self.epoch_blocks: int | None = None  # training blocks in one pass, known once a pass has ended

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        """One pass over the training blocks, shuffled within the buffer by (seed, epoch)."""
        blocks = itertools.islice(self.open_blocks(), self.n_heldout, None)
        return buffer_shuffled(blocks, self.buffer, np.random.default_rng([self.seed, epoch]))

    def blocks(self) -> Iterator[np.ndarray]:
        """Every training block in reading order, pass after pass, without end. One block is read ahead, so a
        pass's length is known when its last block is taken."""
        for epoch in itertools.count():
            stream = self.epoch(epoch)
            ahead, count = next(stream, None), 0
            if ahead is None:
                raise DataError(self._nothing_to_train())
            for block in stream:
                count += 1
                yield ahead
                ahead = block
            self.epoch_blocks = count + 1
            yield ahead

    def _nothing_to_train(self) -> str:
        if not len(self.heldout):
            return (f"{self.name}: the stream makes no block of {self.heldout.shape[1]} tokens: check its split and "
                    "column, or give it more text (or a lower seq_len)")
        return (f"{self.name}: the stream makes only {len(self.heldout)} blocks, all held out (the first "
                f"{self.n_heldout}: 1% of the blocks the step budget reads); nothing is left to train on: add text "
                "(or lower max_steps)")

    def record(self, blocks_read: int) -> dict:
        """What training.json says of the corpus once training read `blocks_read` blocks of it (its length, when a
        pass has ended; a warning when that length makes the held-out blocks more than their 1%)."""
        epochs = blocks_read / self.epoch_blocks if self.epoch_blocks else None
        warning = None
        if self.epoch_blocks is not None and self.n_heldout > heldout_count(self.n_heldout + self.epoch_blocks):
            total = self.n_heldout + self.epoch_blocks
            warning = (f"{self.name}: the stream has {total} blocks, and {self.n_heldout} of them "
                       f"({100 * self.n_heldout / total:.0f}%) are held out (1% of the blocks the step budget reads): "
                       "add text, or lower max_steps")
            log.warning(warning)
        return {"streamed": True, "blocks": self.epoch_blocks, "blocks_read": blocks_read,
                "corpus_share": None if epochs is None else round(min(epochs, 1.0), 6),
                "epochs": None if epochs is None else round(epochs, 4), "corpus_warning": warning}


class StreamedMLMBatches:
    """global_batch(step) for `train.fit` from a StreamedCorpus: step s takes blocks s*B to (s+1)*B - 1 of its
    reading order, masked with the step's seed as MLMBatches masks a file's."""

    def __init__(self, corpus: StreamedCorpus, tokenizer, batch_size: int, seed: int):
        self.corpus, self.tokenizer, self.batch_size, self.seed = corpus, tokenizer, batch_size, seed
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))  # never masked
        self._stream, self._position = None, None

    def __call__(self, step: int) -> tuple[dict, int]:
        position = step * self.batch_size
        if position != self._position:  # the first step, or a resumed one: read the stream up to it
            if position:
                log.info("%s: reading the stream's first %d training blocks again to resume at step %d",
                         self.corpus.name, position, step)
            self._stream = self.corpus.blocks()
            collections.deque(itertools.islice(self._stream, position), maxlen=0)
        blocks = np.stack(list(itertools.islice(self._stream, self.batch_size)))
        self._position = position + self.batch_size
        return masked_batch(torch.from_numpy(blocks).long(), self.tokenizer, self.special_ids, self.seed, step)
