"""KV cache surgery: share a prefix's cache, join requests into one batch, drop finished rows.

Works on transformers' `DynamicCache` whose layers are plain `DynamicLayer`s
(keys and values of shape batch × kv-heads × positions × head-dim). Such a layer
never writes into its tensors: `update` concatenates into new ones. So a cache
can point at another cache's tensors without copying them, and the prefix stays
intact however many requests extend it. Models with sliding-window or other
special layers are refused with the reason, instead of being served wrongly.

A batch of requests of different lengths is kept left-padded: each row's real
positions sit at the right end and a 0/1 attention mask (rows × positions) hides
the padding. Each row carries its own position ids, so rotary and learned
position embeddings see the same positions as when the request runs alone.
"""

from __future__ import annotations

import torch

from engine.generative.errors import GenerationError

KVTensors = list[tuple[torch.Tensor, torch.Tensor]]


def layer_tensors(cache) -> KVTensors:
    """(keys, values) per layer, after checking every layer is one this module can handle."""
    from transformers.cache_utils import DynamicLayer

    kinds = {type(layer).__name__ for layer in cache.layers if type(layer) is not DynamicLayer}
    if kinds:
        raise GenerationError(f"prefix reuse and dynamic batching need full-attention cache layers; this model's "
                              f"cache has {', '.join(sorted(kinds))}")
    if any(not layer.is_initialized for layer in cache.layers):
        raise GenerationError("the cache has layers the model never filled (shared KV layers are not supported)")
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_from_tensors(config, tensors: KVTensors):
    """A DynamicCache whose layers point at `tensors` (no copy); extending it leaves `tensors` untouched."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    if len(cache.layers) != len(tensors):
        raise GenerationError(f"the cache has {len(tensors)} layers but the model expects {len(cache.layers)}")
    for layer, (keys, values) in zip(cache.layers, tensors):
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
    layer_tensors(cache)  # the config may have asked for layer kinds this module cannot share
    return cache


def share(config, cache, batch_size: int = 1):
    """A new cache starting from `cache`'s contents (one row), repeated to `batch_size` rows without copying."""
    tensors = layer_tensors(cache)
    if batch_size != 1:
        tensors = [(k.expand(batch_size, -1, -1, -1), v.expand(batch_size, -1, -1, -1)) for k, v in tensors]
    return cache_from_tensors(config, tensors)


def left_pad(tensors: KVTensors, positions: int) -> KVTensors:
    """Adds `positions` zero columns before the real ones (the mask must hide them)."""
    if positions == 0:
        return tensors
    padded = []
    for keys, values in tensors:
        shape = (keys.shape[0], keys.shape[1], positions, keys.shape[3])
        padded.append((torch.cat([keys.new_zeros(shape), keys], dim=2),
                       torch.cat([values.new_zeros(shape), values], dim=2)))
    return padded


def join_rows(batch: KVTensors | None, mask: torch.Tensor | None, rows: KVTensors,
              rows_mask: torch.Tensor) -> tuple[KVTensors, torch.Tensor]:
    """Appends `rows` (with their 0/1 mask) to the batch, left-padding whichever side is shorter."""
    if batch is None or mask is None:
        return rows, rows_mask
    width, new_width = mask.shape[1], rows_mask.shape[1]
    if new_width < width:
        rows = left_pad(rows, width - new_width)
        rows_mask = torch.cat([rows_mask.new_zeros((rows_mask.shape[0], width - new_width)), rows_mask], dim=1)
    elif new_width > width:
        batch = left_pad(batch, new_width - width)
        mask = torch.cat([mask.new_zeros((mask.shape[0], new_width - width)), mask], dim=1)
    joined = [(torch.cat([k, rk], dim=0), torch.cat([v, rv], dim=0)) for (k, v), (rk, rv) in zip(batch, rows)]
    return joined, torch.cat([mask, rows_mask], dim=0)


def keep_rows(batch: KVTensors, mask: torch.Tensor, keep: list[int]) -> tuple[KVTensors, torch.Tensor]:
    """Only the rows in `keep` (in that order), then drops leading columns that are padding in every row."""
    index = torch.as_tensor(keep, dtype=torch.long, device=mask.device)
    mask = mask.index_select(0, index)
    real_columns = mask.any(dim=0).nonzero()
    first = int(real_columns[0]) if real_columns.numel() else mask.shape[1]
    mask = mask[:, first:]
    kept = [(k.index_select(0, index)[:, :, first:], v.index_select(0, index)[:, :, first:]) for k, v in batch]
    return kept, mask
