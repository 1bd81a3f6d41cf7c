import pytest
import torch

from icpc_hf.grid import (
    PositionCache,
    axis_positions,
    conv_input_size,
    conv_output_size,
    default_levels,
    grid_position_index,
    resample_position_table,
    scaled_grid,
    snap_levels,
)


def test_crop_takes_the_leading_block():
    assert axis_positions(24, 7, "crop") == list(range(7))


def test_stride_takes_the_centre_of_each_covered_area():
    # round((i + 0.5) * G / g - 0.5), the field-of-view consistent mapping
    assert axis_positions(24, 12, "stride") == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]
    assert axis_positions(14, 7, "stride") == [1, 3, 5, 7, 9, 11, 13]
    assert axis_positions(10, 10, "stride") == list(range(10))
    assert axis_positions(9, 1, "stride") == [4]


@pytest.mark.parametrize("full,size", [(24, 7), (14, 13), (8, 3), (101, 50)])
def test_stride_positions_are_strictly_increasing_and_in_range(full, size):
    positions = axis_positions(full, size, "stride")
    assert all(a < b for a, b in zip(positions, positions[1:]))
    assert 0 <= positions[0] and positions[-1] < full


def test_axis_size_out_of_range_raises():
    with pytest.raises(ValueError, match="1 to 8"):
        axis_positions(8, 9, "crop")


def test_flat_index_is_row_major():
    index = grid_position_index((4, 5), (2, 3), "crop")
    assert index.tolist() == [0, 1, 2, 5, 6, 7]
    index3 = grid_position_index((2, 3, 4), (1, 2, 2), "crop")
    assert index3.tolist() == [0, 1, 4, 5]


def test_flat_index_matches_a_manual_2d_selection():
    table = torch.arange(14 * 14).reshape(14, 14)
    rows, cols = axis_positions(14, 5, "stride"), axis_positions(14, 6, "stride")
    manual = table[rows][:, cols].reshape(-1)
    assert torch.equal(grid_position_index((14, 14), (5, 6), "stride"), manual)


def test_resample_is_identity_at_full_size_and_matches_shape():
    table = torch.randn(4 * 6, 8)
    assert torch.allclose(resample_position_table(table, (4, 6), (4, 6)), table, atol=1e-5)
    assert resample_position_table(table, (4, 6), (2, 3)).shape == (6, 8)
    assert resample_position_table(torch.randn(2 * 4 * 4, 8), (2, 4, 4), (1, 2, 2)).shape == (4, 8)


def test_conv_grid_arithmetic_matches_a_real_convolution():
    for length, kernel, stride in [(1024, 16, 10), (128, 16, 10), (64, 8, 4), (17, 4, 4), (16, 16, 10)]:
        conv = torch.nn.Conv1d(1, 1, kernel, stride)
        assert conv(torch.zeros(1, 1, length)).shape[-1] == conv_output_size(length, kernel, stride)
        patches = conv_output_size(length, kernel, stride)
        assert conv_output_size(conv_input_size(patches, kernel, stride), kernel, stride) == patches
        assert conv_output_size(conv_input_size(patches, kernel, stride) - 1, kernel, stride) == patches - 1
    assert conv_output_size(15, 16, 10) == 0


def test_levels_snap_to_whole_patches_and_collisions_raise():
    assert snap_levels([0.5, 1.0], (14, 14), (True, True)) == [0.5, 1.0]
    assert scaled_grid((14, 14), 0.3, (True, True)) == (4, 4)
    assert scaled_grid((8, 101), 0.5, (False, True)) == (8, 50)
    with pytest.raises(ValueError, match="same 7x7 patch grid"):
        snap_levels([0.5, 0.52], (14, 14), (True, True))


def test_default_levels_span_min_level_to_full():
    assert default_levels((8, 8), (True, True), 0.3) == [3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1.0]


def test_position_cache_reuses_index_tensors():
    cache = PositionCache()
    table = torch.randn(16, 4)
    first = cache.positions(table, (4, 4), (2, 2), "stride")
    assert len(cache._index) == 1
    second = cache.positions(table, (4, 4), (2, 2), "stride")
    assert torch.equal(first, second) and len(cache._index) == 1
    assert torch.equal(first, table[[5, 7, 13, 15]])
    assert cache.positions(table, (4, 4), (4, 4), "crop") is table
