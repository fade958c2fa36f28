"""conv_extent: a CNN with a classifier head stays a CNN; linear or attention layers past the head limit do not."""

from torch import nn

from tb_cnnviz.analysis.conv_extent import MAX_HEAD_LAYERS, conv_extent


class Attention(nn.Module):
    """A transformer attention (its qkv and projection linears count as one layer)."""

    def __init__(self, dim=8):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


class ConvAttention(nn.Module):
    """An attention module built from convs (CBAM-like): part of the CNN, not counted."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Conv2d(8, 8, 1)


def test_a_vgg_like_head_of_three_linear_layers_is_a_cnn():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)
    )
    extent = conv_extent(model)
    assert (extent.last_conv, extent.after, extent.convs, extent.cnn) == ("0", ["3", "4", "5"], 1, True)


def test_transformer_blocks_after_a_patch_embedding_are_not():
    blocks = [nn.Sequential(Attention(), nn.Linear(8, 8)) for _ in range(3)]
    model = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), *blocks, nn.Linear(8, 2))
    extent = conv_extent(model)
    assert extent.after == ["1.0", "1.1", "2.0", "2.1", "3.0", "3.1", "4"]  # an attention counts once
    assert len(extent.after) > MAX_HEAD_LAYERS and not extent.cnn


def test_only_what_follows_the_last_conv_counts():
    """Linear layers between convs (a MobileViT-style block) and conv-built attention do not count."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        *[nn.Linear(8, 8) for _ in range(6)],
        nn.Conv2d(8, 8, 1),
        ConvAttention(),
        nn.Linear(8, 2),
    )
    extent = conv_extent(model)
    assert (extent.last_conv, extent.after, extent.cnn) == ("8.gate", ["9"], True)
