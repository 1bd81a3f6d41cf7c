"""Run by test_scale.py under `torchrun --nproc_per_node 2`: a patched model sharded with FSDP2 (`fully_shard`)
on CPU trains on compressed batches and computes what the unsharded model computes."""

import copy
import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import tiny_vit  # noqa: E402

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model  # noqa: E402


def main(out_dir: str) -> None:
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    icpc = ICPCConfig(levels=[0.5, 1.0], schedule="constant")
    model = patch_model(tiny_vit(), icpc).train()  # patched before wrapping, as FSDP wants it
    reference = copy.deepcopy(model)
    for layer in model.vit.layers:
        fully_shard(layer)
    fully_shard(model)
    collator = ICPCDataCollator(None, icpc)
    generator = torch.Generator().manual_seed(rank)
    features = [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(4)]
    record = {"rank": rank, "losses": [], "reference": []}
    for level in (0.5, 1.0):
        batch = collator(features, level=level)
        loss = model(**batch).loss
        record["losses"].append(float(loss))
        record["reference"].append(float(reference(**batch).loss))
        loss.backward()
    record["grad_norm"] = float(sum(p.grad.full_tensor().norm() ** 2 for p in model.parameters()) ** 0.5)
    with open(os.path.join(out_dir, f"fsdp{rank}.json"), "w") as handle:
        json.dump(record, handle)
    dist.barrier()  # both records written: every collective is done


if __name__ == "__main__":
    main(sys.argv[1])
    # Skip teardown, as ddp_worker.py does: tearing down gloo while its worker thread runs aborts a rank in torch
    # 2.13 ("terminate called without an active exception", seen in CI) after its record is written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
