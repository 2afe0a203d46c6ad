"""Shapes of every body/head combination, the dueling aggregation, input encodings."""

from __future__ import annotations

import functools

import pytest
import torch

from rlkit.nets import CNNBody, DuelingHead, LinearHead, MLPBody, Network, OneHot, Scale, body_for_shape

HEADS = {
    "linear": lambda width: LinearHead(in_features=width, out_features=3),
    "dueling": lambda width: DuelingHead(in_features=width, n_actions=3),
    "dueling_hidden": lambda width: DuelingHead(in_features=width, n_actions=3, hidden=16),
}
BODIES = {  # name: (body, input shape without the batch axis)
    "mlp_relu": (lambda: MLPBody(in_features=4, hidden=(32, 16)), (4,)),
    "mlp_tanh": (lambda: MLPBody(in_features=4, hidden=(8,), activation_name="tanh"), (4,)),
    "mlp_sigmoid_no_hidden": (lambda: MLPBody(in_features=4, hidden=(), activation_name="sigmoid"), (4,)),
    "mlp_flattens_images": (lambda: MLPBody(in_features=64, hidden=(10,)), (1, 8, 8)),
    "cnn_nature": (lambda: CNNBody(in_channels=4), (4, 84, 84)),
    "cnn_digits": (
        lambda: CNNBody(in_channels=1, input_hw=(8, 8), channels=(8,), kernel_sizes=(3,), strides=(1,), paddings=(1,),
                        pool="max", hidden=32),
        (1, 8, 8),
    ),
}


@pytest.mark.parametrize("head_name", HEADS)
@pytest.mark.parametrize("body_name", BODIES)
def test_every_body_head_combination_has_the_right_shape(body_name: str, head_name: str) -> None:
    make_body, shape = BODIES[body_name]
    body = make_body()
    net = Network(body=body, head=HEADS[head_name](body.out_features))
    assert net(torch.zeros(5, *shape)).shape == (5, 3)
    assert body(torch.zeros(2, *shape)).shape == (2, body.out_features)


def test_cnn_flatten_size_is_computed_from_the_input_size() -> None:
    assert CNNBody(in_channels=4).flat_features == 64 * 7 * 7  # Nature DQN on 84x84
    assert CNNBody(in_channels=4, input_hw=(36, 36)).flat_features == 64 * 1 * 1
    assert MLPBody(in_features=4, hidden=(32, 16)).out_features == 16
    assert MLPBody(in_features=4, hidden=()).out_features == 4


def test_dueling_head_adds_value_to_mean_centred_advantages() -> None:
    head = DuelingHead(in_features=2, n_actions=3)
    with torch.no_grad():
        head.value.weight.copy_(torch.tensor([[1.0, 0.0]]))
        head.value.bias.fill_(0.5)
        head.advantage.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        head.advantage.bias.zero_()
    # V = 2 + 0.5 = 2.5; A = (2, 4, 6), mean 4 -> Q = 2.5 + (-2, 0, 2)
    assert head(torch.tensor([[2.0, 4.0]])).tolist() == [[0.5, 2.5, 4.5]]


def test_input_encodings() -> None:
    assert OneHot(n=4)(torch.tensor([2, 0])).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    scaled = Scale(divisor=255.0)(torch.tensor([[0, 51, 255]], dtype=torch.uint8))
    assert scaled.dtype == torch.float32 and scaled.tolist() == [[0.0, pytest.approx(0.2), 1.0]]


def test_body_for_shape_picks_in_features_or_image_sizes() -> None:
    mlp = body_for_shape(functools.partial(MLPBody, hidden=(8,)), (1, 8, 8))
    assert isinstance(mlp, MLPBody) and mlp.in_features == 64
    cnn = body_for_shape(functools.partial(CNNBody, hidden=16), (4, 36, 36))
    assert isinstance(cnn, CNNBody) and cnn.in_channels == 4 and cnn.flat_features == 64
    with pytest.raises(ValueError, match="channels, height, width"):
        body_for_shape(CNNBody, (4,))


def test_unknown_activation_names_the_choices() -> None:
    with pytest.raises(ValueError, match="relu, tanh, sigmoid"):
        MLPBody(in_features=4, activation_name="gelu")
