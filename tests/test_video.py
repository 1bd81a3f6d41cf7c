"""VideoMAE: spatio-temporal levels, consistent positions, identity at full size, training, pipeline, Hub export."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from helpers import quiet_cpu_args
from transformers import (
    Trainer,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VideoMAEImageProcessor,
    VideoMAEModel,
    pipeline,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade
from icpc_hf.drawn_level import current_batch
from icpc_hf.grid import axis_positions
from icpc_hf.video import VideoModality, tubelet_frame_index

pytestmark = pytest.mark.usefixtures("one_torch_thread")


FRAMES, TUBELET, SIZE, PATCH = 8, 2, 32, 8  # full grid 4 x 4 x 4
FULL_GRID = (FRAMES // TUBELET, SIZE // PATCH, SIZE // PATCH)


def tiny_config(**kwargs) -> VideoMAEConfig:
    values = dict(
        num_frames=FRAMES,
        tubelet_size=TUBELET,
        image_size=SIZE,
        patch_size=PATCH,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    return VideoMAEConfig(**{**values, **kwargs})


def tiny_classifier(**kwargs) -> VideoMAEForVideoClassification:
    return VideoMAEForVideoClassification(tiny_config(**kwargs)).eval()


def tiny_processor() -> VideoMAEImageProcessor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VideoMAEImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})


def clips(count: int, frames: int = FRAMES, size: int = SIZE) -> torch.Tensor:
    return torch.randn(count, frames, 3, size, size)


def raw_clip(frames: int = FRAMES, height: int = 40, width: int = 48) -> np.ndarray:
    return np.random.default_rng(frames).integers(0, 255, (frames, height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------- positions and frame sampling
@pytest.mark.parametrize("source", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("tubelet", [1, 2, 3])
def test_kept_frames_are_whole_tubelets_at_the_stride_positions(source, tubelet):
    for kept in range(1, source + 1):
        index = tubelet_frame_index(source * tubelet, kept, tubelet)
        chosen = [index[i * tubelet : (i + 1) * tubelet] for i in range(kept)]
        for frames, original in zip(chosen, axis_positions(source, kept, "stride")):
            assert frames == list(range(original * tubelet, (original + 1) * tubelet))


def test_temporal_stride_gives_each_kept_tubelet_the_embedding_of_the_tubelet_it_covers():
    """Time-only compression with `stride`: the compressed clip's embeddings are exactly the full clip's
    embeddings of the tubelets it kept (same frames through the Conv3d, same rows of the sinusoid table)."""
    model = patch_model(tiny_classifier(), ICPCConfig(position_strategy="stride", axes=["time"], levels=[0.5, 0.75, 1]))
    icpc = model.config.icpc
    embeddings = model.videomae.embeddings
    video = clips(2)
    full = embeddings(video, None).reshape(2, *FULL_GRID, -1)
    collator = ICPCDataCollator(None, icpc)
    for level, expected_tubelets in ((0.5, [1, 3]), (0.75, [0, 2, 3])):
        batch = collator([{"pixel_values": clip} for clip in video], level=level)
        kept = len(expected_tubelets)
        assert batch["pixel_values"].shape[1] == kept * TUBELET
        compressed = embeddings(batch["pixel_values"], None).reshape(2, kept, *FULL_GRID[1:], -1)
        torch.testing.assert_close(compressed, full[:, expected_tubelets], rtol=0, atol=1e-6)


@pytest.mark.parametrize("strategy", ["crop", "stride"])
def test_positions_are_the_strategy_subset_of_the_3d_table(strategy):
    model = patch_model(tiny_classifier(), ICPCConfig(position_strategy=strategy, levels=[0.5, 1]))
    embeddings = model.videomae.embeddings
    with torch.no_grad():
        embeddings.patch_embeddings.projection.weight.zero_()
        embeddings.patch_embeddings.projection.bias.zero_()
    positions = embeddings(torch.zeros(1, 4, 3, 16, 16), None)[0]
    table = embeddings.position_embeddings[0].reshape(*FULL_GRID, -1)
    t, h, w = (axis_positions(full, 2, strategy) for full in FULL_GRID)
    expected = table[t][:, h][:, :, w].reshape(-1, table.shape[-1])
    assert torch.equal(positions, expected)


def test_interpolate_resamples_the_table():
    model = patch_model(tiny_classifier(), ICPCConfig(position_strategy="interpolate", levels=[0.5, 1]))
    logits = model(pixel_values=clips(2, frames=4, size=16)).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


# ---------------------------------------------------------------------- the patch
def test_full_size_masked_clips_are_bit_identical_to_the_unpatched_base_model():
    base = VideoMAEModel(tiny_config()).eval()
    base_reference = copy.deepcopy(base)
    patch_model(base)
    video = clips(2)
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, ::4] = True
    assert torch.equal(
        base(pixel_values=video, bool_masked_pos=mask).last_hidden_state,
        base_reference(pixel_values=video, bool_masked_pos=mask).last_hidden_state,
    )


@pytest.mark.parametrize("use_mean_pooling", [True, False])
def test_compressed_clips_run_where_the_unpatched_model_refuses_them(use_mean_pooling):
    model = tiny_classifier(use_mean_pooling=use_mean_pooling)
    small = clips(2, frames=4, size=16)
    with pytest.raises((ValueError, RuntimeError)):
        model(pixel_values=small)
    patch_model(model)
    outputs = model(pixel_values=small, labels=torch.tensor([0, 2]), output_hidden_states=True)
    assert outputs.logits.shape == (2, 3)
    assert outputs.hidden_states[-1].shape[1] == 2 * 2 * 2
    outputs.loss.backward()
    assert model.videomae.embeddings.patch_embeddings.projection.weight.grad is not None


def test_bool_masked_pos_on_a_compressed_grid():
    model = patch_model(VideoMAEModel(tiny_config()).eval())
    small = clips(2, frames=4, size=16)  # 2 x 2 x 2 = 8 tubelets
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :3] = True
    mask[1, 5:] = True
    hidden = model(pixel_values=small, bool_masked_pos=mask).last_hidden_state
    assert hidden.shape == (2, 5, 32)
    with pytest.raises(ValueError, match="8 tubelets"):
        model(pixel_values=small, bool_masked_pos=torch.zeros(2, 64, dtype=torch.bool))
    uneven = torch.zeros(2, 8, dtype=torch.bool)
    uneven[0, 0] = True
    with pytest.raises(ValueError, match="same number"):
        model(pixel_values=small, bool_masked_pos=uneven)


def test_the_patch_refuses_clips_it_cannot_cut_into_tubelets():
    model = patch_model(tiny_classifier())
    with pytest.raises(ValueError, match="tubelets"):
        model(pixel_values=clips(1, frames=5, size=16))
    with pytest.raises(ValueError, match="larger than"):
        model(pixel_values=clips(1, frames=10, size=32))
    with pytest.raises(ValueError, match="channels"):
        model(pixel_values=torch.randn(1, 4, 1, 16, 16))


# ---------------------------------------------------------------------- collation
def test_levels_shrink_frames_and_frame_size_and_count_tokens():
    icpc = ICPCConfig()
    patch_model(tiny_classifier(), icpc)
    modality = VideoModality()
    collator = ICPCDataCollator(None, icpc)
    features = [{"pixel_values": clip, "label": 1} for clip in clips(3)]
    for level in icpc.levels:
        batch = collator(features, level=level)
        t, h, w = modality.grid(level, icpc)
        assert batch["pixel_values"].shape == (3, t * TUBELET, 3, h * PATCH, w * PATCH)
        assert modality.tokens(batch, icpc).tolist() == [t * h * w] * 3
        assert modality.full_tokens(batch, icpc).tolist() == [64] * 3
        assert batch["labels"].tolist() == [1, 1, 1]
    assert torch.equal(collator(features)["pixel_values"], torch.stack([f["pixel_values"] for f in features]))


def test_longer_clips_are_sampled_evenly_by_whole_tubelets():
    icpc = ICPCConfig(axes=["time"], levels=[0.5, 1])
    patch_model(tiny_classifier(), icpc)
    frame_ids = torch.arange(16.0)[:, None, None, None].expand(16, 3, SIZE, SIZE)
    batch = ICPCDataCollator(None, icpc)([{"pixel_values": frame_ids}])
    assert batch["pixel_values"][0, :, 0, 0, 0].tolist() == [2, 3, 6, 7, 10, 11, 14, 15]


def test_raw_clips_go_through_the_processor():
    icpc = ICPCConfig()
    patch_model(tiny_classifier(), icpc)
    processor = tiny_processor()
    collator = ICPCDataCollator(processor, icpc)
    channel_last = raw_clip()
    channel_first = channel_last.transpose(0, 3, 1, 2)
    frames = list(channel_last)
    batch = collator([{"video": channel_last}, {"video": channel_first}, {"video": frames}], level=1.0)
    assert batch["pixel_values"].shape == (3, FRAMES, 3, SIZE, SIZE)
    assert torch.allclose(batch["pixel_values"][0], batch["pixel_values"][1])
    assert torch.allclose(batch["pixel_values"][0], batch["pixel_values"][2])
    mixed = [np.zeros((40, 48, 3), np.uint8)] * 4 + [np.zeros((50, 60, 3), np.uint8)] * 4
    assert collator([{"video": mixed}], level=0.5)["pixel_values"].shape == (1, 4, 3, 16, 16)


def test_bad_clips_get_errors_that_name_the_fix():
    icpc = ICPCConfig(levels=[0.5, 1])
    patch_model(tiny_classifier(), icpc)
    collator = ICPCDataCollator(None, icpc)
    with pytest.raises(ValueError, match="shorter than the 4 frames"):
        collator([{"pixel_values": torch.randn(2, 3, SIZE, SIZE)}], level=0.5)
    with pytest.raises(ValueError, match="not a whole number of tubelets"):
        collator([{"pixel_values": torch.randn(7, 3, SIZE, SIZE)}], level=0.5)
    with pytest.raises(ValueError, match="channel-last"):
        collator([{"pixel_values": torch.randn(FRAMES, SIZE, SIZE, 3)}])
    with pytest.raises(ValueError, match="different shapes"):
        collator([{"pixel_values": [torch.randn(3, SIZE, SIZE)] * 4 + [torch.randn(3, 16, 16)] * 4}])
    with pytest.raises(ValueError, match="smaller than the level"):
        collator([{"pixel_values": torch.randn(FRAMES, 3, 8, 8)}], level=0.5)
    with pytest.raises(ValueError, match="no video/image processor"):
        collator([{"video": raw_clip()}])
    with pytest.raises(ValueError, match="`pixel_values`"):
        collator([{"frames": raw_clip()}])


# ---------------------------------------------------------------------- training, cascade, pipeline, Hub
def test_trainer_with_the_callback_trains_on_drawn_levels(tmp_path):
    model = patch_model(tiny_classifier(), ICPCConfig(levels=[0.5, 0.75, 1]))
    collator = ICPCDataCollator(None, model.config.icpc)
    shapes = []
    original = collator.modality.collate

    def spy(processor, features, level, icpc):
        batch = original(processor, features, level, icpc)
        if current_batch() is not None:  # a training batch (the compensation after training collates its own)
            shapes.append(tuple(batch["pixel_values"].shape[1:]))
        return batch

    collator.modality.collate = spy
    try:
        train = [{"pixel_values": clip, "label": i % 3} for i, clip in enumerate(clips(24))]
        args = quiet_cpu_args(
            str(tmp_path),
            num_train_epochs=2,
            per_device_train_batch_size=4,
            dataloader_num_workers=0,
            logging_steps=2,
        )
        Trainer(model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[ICPCCallback()]).train()
    finally:
        del collator.modality.collate
    frames = {shape[0] for shape in shapes}
    assert len(shapes) == 12 and frames <= {4, 6, 8} and len(frames) > 1
    assert all(shape[2] == shape[0] * 4 for shape in shapes)  # one level per batch: time and space move together


def test_pipeline_counts_tubelets_and_its_prepared_clips_run_the_cascade():
    model = patch_model(tiny_classifier(), ICPCConfig(levels=[0.5, 1]))
    processor = tiny_processor()
    classifier = pipeline("icpc-video-classification", model=model, image_processor=processor)
    video = raw_clip()
    answer = classifier(video, top_k=2)
    assert (answer[0]["level"], answer[0]["tokens"]) in {(0.5, 8), (1.0, 64)}
    cheapest = classifier([video, video], thresholds=0.0, top_k=1)
    assert [a[0]["level"] for a in cheapest] == [0.5, 0.5] and cheapest[0][0]["tokens"] == 8

    features = [classifier.modality.prepare(processor, video, classifier.icpc)]
    result = run_cascade(model, features, processor, thresholds=0.0)
    assert result.tokens.tolist() == [8]


def test_a_motion_sets_the_items_directions_and_canvas_of_the_example_clips():
    """The benchmark's second video task (video_diagonal): the item's brightest point moves 2 px a frame along the
    labelled diagonal, on the motion's canvas, and the example's own clips stay as they were."""
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    import video_classification as video

    clips, labels = video.make_clips(12, "test", 5, motion=video.DIAGONAL)
    assert clips.shape == (12, 8, 48, 48, 1) and set(labels) <= set(range(12))
    steps = list(video.DIAGONAL.directions.values())
    for clip, label in zip(clips[..., 0], labels):
        first, last = (np.array(np.unravel_index(np.argmax(frame), frame.shape)) for frame in (clip[0], clip[-1]))
        assert tuple(np.sign(last - first)) == steps[label % 4]
    assert video.new_model(0, video.DIAGONAL).config.image_size == 48
    assert video.new_model(0).config.id2label == dict(enumerate(video.LABELS))
    default, _ = video.make_clips(4, "test", 5)
    assert default.shape == (4, 8, 32, 32, 1)
