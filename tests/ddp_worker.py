"""Run by test_scale.py (and, with data_kind "calibrate", test_end_of_training.py) under `torchrun --nproc_per_node 2`:
trains with ICPC and records what each rank saw and, with an evaluation set, the cascade it shipped."""

import json
import os
import sys

import torch
from transformers import Trainer, TrainingArguments

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import InputRecorder, RecordingCollator, tiny_vit  # noqa: E402

from icpc_hf import ICPCCallback, ICPCConfig, patch_model  # noqa: E402


def main(out_dir: str, num_samples: int, workers: int, data_kind: str) -> Trainer:
    stream = data_kind == "stream"
    torch.manual_seed(0)
    data = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3, "idx": i} for i in range(num_samples)]
    length = {"num_train_epochs": 2}
    if stream:  # 4 steps of 2 x 4 samples a pass, 6 steps: the second pass is cut short
        import datasets

        data = datasets.Dataset.from_list(data).to_iterable_dataset(num_shards=4).with_format("torch")
        length = {"max_steps": 6}
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0], seed=7)
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    collator = RecordingCollator(None, icpc, resize_on_device=True if data_kind == "device" else None)
    calibrate = data_kind == "calibrate"  # an evaluation set: every rank calibrates the cascade at the end of training
    # Every setting meets this target, so the cheapest ships: chosen on the measured level times, which differ
    # between the processes (and may make full size the cheapest on a busy machine)
    target = {"max_accuracy_loss": 1.0}
    callback = ICPCCallback(calibrate=target, ship_check=False) if calibrate else ICPCCallback()
    eval_data = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(12)] if calibrate else None
    args = TrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=4,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
        logging_steps=1000,
        dataloader_num_workers=workers,
        **length,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=eval_data,
        data_collator=collator,
        callbacks=[callback],
    )
    trainer.train()
    rank = trainer.args.process_index
    plan = callback.levelled_collate.plan
    if stream:
        plans = [[plan.level(epoch * 4 + p, epoch, p) for epoch in range(2) for p in range(4)][:6]]
    else:
        plans = [plan.epoch_levels(e, len(trained.sides) // 2) for e in range(2)]
    record = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "batches": [{"size": side, "idx": [int(i) for i in idx]} for side, idx in collator.batches],
        "trained": trained.sides,
        "plans": plans,
        "steps_per_epoch": len(trained.sides) // 2,
        "shipped": {key: trainer.model.config.icpc[key] for key in ("cascade_levels", "thresholds")},
        "calibrated": None if callback.calibration is None else vars(callback.calibration.chosen),
        "checked": None if callback.shipping.ship_check is None else callback.shipping.ship_check.ships,
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(record, handle)
    return trainer


if __name__ == "__main__":
    trainer = main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])  # held: freeing it frees the reducer
    # Skip teardown: freeing the DDP reducer races gloo's worker thread for the GIL in torch 2.13, which aborts
    # or hangs a rank after its record is written (seen in CI). Every collective is already done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
