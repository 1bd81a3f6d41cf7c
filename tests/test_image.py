import copy

import numpy as np
import pytest
import torch
from helpers import tiny_image_processor, tiny_vit
from PIL import Image
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BitImageProcessor,
    Dinov2Config,
    Dinov2ForImageClassification,
    pipeline,
)
from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings

from icpc_hf import ICPCConfig, ICPCDataCollator, is_patched, patch_model, run_cascade
from icpc_hf.grid import axis_positions, grid_position_index
from icpc_hf.patching import icpc_settings


def features(count=4, size=32, channels=3):
    return [{"pixel_values": torch.randn(channels, size, size), "label": i % 3} for i in range(count)]


@pytest.mark.parametrize("strategy", ["crop", "stride"])
def test_compressed_grid_takes_the_strategy_positions(strategy):
    model = patch_model(tiny_vit(), ICPCConfig(position_strategy=strategy))
    embeddings = model.vit.embeddings
    pixels = torch.randn(2, 3, 16, 20)  # a 4 x 5 grid of the full 8 x 8
    out = embeddings(pixels)
    table = embeddings.position_embeddings[0]
    index = grid_position_index((8, 8), (4, 5), strategy)
    patches = embeddings.patch_embeddings(pixels)
    expected = torch.cat((embeddings.cls_token.expand(2, -1, -1), patches), 1) + torch.cat(
        (table[:1], table[1:][index])
    )
    assert torch.allclose(out, expected)
    rows = axis_positions(8, 4, strategy)
    assert index[:5].tolist() == [rows[0] * 8 + c for c in axis_positions(8, 5, strategy)]


def tiny_dinov2():
    config = Dinov2Config(
        image_size=32,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_ratio=2,
        num_labels=3,
        use_mask_token=True,
    )
    model = Dinov2ForImageClassification(config).eval()
    torch.nn.init.normal_(model.dinov2.embeddings.mask_token)  # zeros by default: masking would look like no-op
    return model


@pytest.mark.parametrize("strategy", ["crop", "stride"])
def test_compressed_dinov2_grid_takes_the_strategy_positions_not_its_native_resampling(strategy):
    model = patch_model(tiny_dinov2(), ICPCConfig(position_strategy=strategy))
    embeddings = model.dinov2.embeddings
    pixels = torch.randn(2, 3, 16, 20)  # a 4 x 5 grid of the full 8 x 8
    masked = torch.rand(2, 20, generator=torch.Generator().manual_seed(0)) < 0.5
    out = embeddings(pixels, bool_masked_pos=masked)
    table = embeddings.position_embeddings[0]
    patches = torch.where(masked[..., None], embeddings.mask_token, embeddings.patch_embeddings(pixels))
    positions = torch.cat((table[:1], table[1:][grid_position_index((8, 8), (4, 5), strategy)]))
    assert torch.allclose(out, torch.cat((embeddings.cls_token.expand(2, -1, -1), patches), 1) + positions)
    assert not torch.allclose(out, Dinov2Embeddings.forward(embeddings, pixels, bool_masked_pos=masked))


def test_dinov2_full_size_is_the_original_forward_and_a_short_crop_is_refused_with_the_fix():
    model = tiny_dinov2()
    reference = copy.deepcopy(model)
    patch_model(model, ICPCConfig(levels=[0.5, 1.0]))
    pixels, masked = torch.randn(2, 3, 32, 32), torch.rand(2, 64) < 0.5
    assert torch.equal(
        model.dinov2(pixels, bool_masked_pos=masked).last_hidden_state,
        reference.dinov2(pixels, bool_masked_pos=masked).last_hidden_state,
    )
    with pytest.raises(ValueError, match="larger than the model"):  # unpatched DINOv2 would resample its table
        model(pixel_values=torch.randn(1, 3, 40, 40))
    # Meta's checkpoints: image_size 518, processor crop 224; the full size is the config's, not the crop's
    cropped = BitImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"smaller than the level's 32x32: resize images to the model's \(32, 32\)"):
        ICPCDataCollator(cropped, icpc_settings(model))([{"image": image, "label": 0}], level=1.0)


def test_unpatched_model_refuses_compressed_images():
    with pytest.raises(ValueError, match="doesn't match"):
        tiny_vit()(pixel_values=torch.randn(1, 3, 16, 16))


def test_patched_model_refuses_position_ids_it_would_ignore():
    model = patch_model(tiny_vit(), ICPCConfig())
    with pytest.raises(ValueError, match="position_ids"):
        model(pixel_values=torch.randn(1, 3, 32, 32), position_ids=torch.arange(65)[None])


def test_patched_model_refuses_grids_it_cannot_take():
    model = patch_model(tiny_vit(), ICPCConfig())
    with pytest.raises(ValueError, match="larger than the model"):
        model(pixel_values=torch.randn(1, 3, 40, 32))
    with pytest.raises(ValueError, match="smaller than one patch"):
        model(pixel_values=torch.randn(1, 3, 2, 2))


def test_unsupported_model_type_lists_supported_ones():
    bert = BertForSequenceClassification(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    bert.config.model_type = "not-a-model"
    with pytest.raises(ValueError, match="supported model types: .*vit"):
        patch_model(bert, ICPCConfig())


def test_patch_settings_are_resolved_in_place_and_stored_in_config():
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0])
    model = patch_model(tiny_vit(), icpc)
    assert icpc.is_resolved and icpc.geometry["full_grid"] == [8, 8]
    assert model.config.icpc["levels"] == [0.5, 0.75, 1.0] and is_patched(model)


def test_lora_wrapped_model_is_patched_and_trains_on_compressed_inputs():
    peft = pytest.importorskip("peft")
    model = tiny_vit()
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    icpc = ICPCConfig()
    patch_model(lora, icpc)
    assert is_patched(lora) and lora.get_base_model().config.icpc["model_type"] == "vit"
    batch = ICPCDataCollator(None, icpc)(features(), level=0.5)
    loss = lora(**batch).loss
    loss.backward()
    assert any(p.grad is not None for n, p in lora.named_parameters() if "lora_" in n)


def test_collator_resizes_to_the_level_and_keeps_labels():
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    collator = ICPCDataCollator(tiny_image_processor(), icpc)
    batch = collator(features(), level=0.5)
    assert batch["pixel_values"].shape == (4, 3, 16, 16) and batch["labels"].tolist() == [0, 1, 2, 0]
    full = collator(features())
    assert full["pixel_values"].shape == (4, 3, 32, 32)


def test_collator_takes_raw_pil_images_and_labels_key():
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    images = [Image.fromarray((np.random.rand(40, 50, 3) * 255).astype("uint8")) for _ in range(2)]
    batch = ICPCDataCollator(tiny_image_processor(), icpc)([{"image": im, "labels": 1} for im in images], level=0.75)
    assert batch["pixel_values"].shape == (2, 3, 24, 24) and batch["labels"].tolist() == [1, 1]


def test_collator_mixed_sizes_are_resized_individually():
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    mixed = [{"pixel_values": torch.randn(3, 32, 32)}, {"pixel_values": torch.randn(3, 48, 40)}]
    assert ICPCDataCollator(None, icpc)(mixed, level=0.5)["pixel_values"].shape == (2, 3, 16, 16)


def test_collator_bad_inputs_name_the_problem():
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    collator = ICPCDataCollator(None, icpc)
    with pytest.raises(ValueError, match="channels=3"):
        collator(features(channels=1))
    with pytest.raises(ValueError, match="smaller than the level"):
        collator(features(size=8), level=0.5)
    with pytest.raises(ValueError, match="pixel_values"):
        collator([{"text": "hello"}])
    with pytest.raises(ValueError, match="not resolved"):
        ICPCDataCollator(None, ICPCConfig())(features())


def test_cascade_escalates_only_unsure_samples_and_the_last_level_always_answers():
    model = patch_model(tiny_vit(), ICPCConfig(cascade_levels=[0.5, 0.75, 1.0]))
    samples = features(6)
    confident = run_cascade(model, samples, None, thresholds=0.0, batch_size=4)
    assert confident.answered_level == [0.5] * 6
    assert confident.tokens.tolist() == [17] * 6
    never = run_cascade(model, samples, None, thresholds=1.0, batch_size=4)
    assert never.answered_level == [1.0] * 6
    assert never.spent_tokens.tolist() == [17 + 37 + 65] * 6
    full = run_cascade(model, samples, None, levels=[1.0])
    assert torch.allclose(never.probabilities, full.probabilities, atol=1e-6)
    # a threshold between the samples' confidences splits them
    first = run_cascade(model, samples, None, levels=[0.5], thresholds=0.0).probabilities.max(-1).values
    middle = float(first.median())
    split = run_cascade(model, samples, None, levels=[0.5, 1.0], thresholds=middle)
    assert split.answered_step.tolist() == [0 if c >= middle else 1 for c in first.tolist()]


def test_pipeline_reports_level_and_tokens_and_takes_per_call_thresholds():
    model = patch_model(tiny_vit(), ICPCConfig(cascade_levels=[0.5, 1.0], thresholds=0.0))
    classifier = pipeline("icpc-image-classification", model=model, image_processor=tiny_image_processor())
    image = Image.fromarray((np.random.rand(32, 32, 3) * 255).astype("uint8"))
    answer = classifier(image, top_k=2)
    assert len(answer) == 2 and answer[0]["level"] == 0.5 and answer[0]["tokens"] == 17
    assert answer[0]["score"] >= answer[1]["score"]
    with pytest.raises(TypeError, match="threshold"):
        classifier(image, threshold=0.5)
    answers = classifier([image, image, image], thresholds=1.0, batch_size=2)
    assert [a[0]["level"] for a in answers] == [1.0, 1.0, 1.0] and answers[0][0]["tokens"] == 65


def test_pipeline_patches_a_saved_model_by_itself(tmp_path):
    model = patch_model(tiny_vit(), ICPCConfig(cascade_levels=[0.5, 1.0], thresholds=0.0))
    model.save_pretrained(tmp_path)
    tiny_image_processor().save_pretrained(tmp_path)
    classifier = pipeline("icpc-image-classification", model=str(tmp_path))
    assert is_patched(classifier.model)
    image = Image.fromarray((np.random.rand(32, 32, 3) * 255).astype("uint8"))
    assert classifier(image)[0]["level"] == 0.5


def test_collator_takes_the_patched_model_and_refuses_an_unpatched_one():
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 1.0]))
    samples = [{"pixel_values": torch.randn(3, 32, 32), "label": 0} for _ in range(2)]
    from_model = ICPCDataCollator(None, model)(samples, level=0.5)
    from_config = ICPCDataCollator(None, model.config)(samples, level=0.5)
    assert torch.equal(from_model["pixel_values"], from_config["pixel_values"])
    with pytest.raises(TypeError, match="patch_model"):
        ICPCDataCollator(None, tiny_vit())


def learned_layout(model, grid=(8, 8)):
    """Give a ViT's (or DeiT's) patch rows of the position table a smooth layout over the grid, as pretraining does."""
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    frequencies = torch.arange(1, 9).float() / 8
    layout = torch.cat(
        [torch.sin(rows.flatten()[:, None] * frequencies), torch.cos(cols.flatten()[:, None] * frequencies)], -1
    )
    layout = layout - layout.mean(0)  # no row shared by every patch: what is alike is the neighbours
    table = model.base_model.embeddings.position_embeddings
    with torch.no_grad():
        table[0, -layout.shape[0] :] = layout.repeat(1, table.shape[-1] // layout.shape[1] + 1)[:, : table.shape[-1]]
    return model


def test_neighbour_similarity_tells_a_learned_layout_from_a_fresh_table():
    from icpc_hf.embeddings import LAYOUT_THRESHOLD
    from icpc_hf.grid import neighbour_similarity

    fresh = tiny_vit().vit.embeddings.position_embeddings[0, 1:]
    learned = learned_layout(tiny_vit()).vit.embeddings.position_embeddings[0, 1:]
    assert abs(neighbour_similarity(fresh, (8, 8))) < LAYOUT_THRESHOLD / 2
    assert neighbour_similarity(learned, (8, 8)) > 2 * LAYOUT_THRESHOLD
    assert neighbour_similarity(learned[torch.randperm(64)], (8, 8)) < LAYOUT_THRESHOLD  # the layout, not the rows


@pytest.mark.parametrize("make", [tiny_vit, tiny_dinov2])
def test_default_positions_crop_a_fresh_table_and_interpolate_a_pretrained_one(make, tmp_path):
    assert icpc_settings(patch_model(make(), ICPCConfig())).position_strategy == "crop"
    pretrained = patch_model(learned_layout(make()), ICPCConfig())
    assert icpc_settings(pretrained).position_strategy == "interpolate"
    assert (
        icpc_settings(patch_model(learned_layout(make()), ICPCConfig(position_strategy="stride"))).position_strategy
        == "stride"
    )
    fresh = patch_model(make(), ICPCConfig())
    fresh.save_pretrained(tmp_path)  # trained from scratch with crop: its table learns a layout, its settings stay
    reloaded = type(fresh).from_pretrained(tmp_path)
    learned_layout(reloaded)
    assert icpc_settings(patch_model(reloaded, ICPCConfig(levels=[0.5, 1.0]))).position_strategy == "crop"
