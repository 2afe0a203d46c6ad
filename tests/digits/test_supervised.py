"""The supervised digits trainer: configs, model building, a short run, and its body reused by a Q-network."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rlkit import tb
from rlkit.checkpoint import FILENAME, load_checkpoint, save_checkpoint
from rlkit.cli.app import check_group_overrides, conf_dir
from rlkit.config.registry import body_factory, optimizer_factory
from rlkit.digits.confusion import confusion_image, confusion_matrix
from rlkit.digits.training import FitResult, batch_size_for, build_inputs, build_model, run
from rlkit.errors import RlkitError
from rlkit.nets import CNNBody, LinearHead, MLPBody, Network, Scale
from rlkit.nets.transfer import init_body_from_supervised, load_body_state
from rlkit.supervised import CONFIG_GROUPS, compose_config

REPO = Path(__file__).resolve().parents[2]
OPTIMIZERS = {  # option -> (torch class, lr in conf/optim)
    "sgd": (torch.optim.SGD, 0.01),
    "momentum": (torch.optim.SGD, 0.01),
    "adagrad": (torch.optim.Adagrad, 0.01),
    "rmsprop": (torch.optim.RMSprop, 0.001),
    "adam": (torch.optim.Adam, 0.001),
    "adadelta": (torch.optim.Adadelta, 1.0),
}
SMALL_MLP = ("net.hidden=[32,16]", "epochs=2", "progress=false")


def plain(node):
    """A composed config node as the plain data rlkit.config.registry takes."""
    return OmegaConf.to_container(node, resolve=True)


def train_in(run_dir: Path, *overrides: str) -> FitResult:
    cfg, choices = compose_config(overrides)
    return run(cfg, run_dir, choices=choices)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("mlp_run")
    train_in(run_dir, *SMALL_MLP)
    return run_dir


def digits_batch() -> torch.Tensor:
    return torch.arange(5 * 64, dtype=torch.uint8).reshape(5, 1, 8, 8) % 17  # grey levels 0..16


# --- configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_config_instantiates(name: str) -> None:
    cfg, choices = compose_config([f"optim={name}"])
    optimizer = optimizer_factory(plain(cfg.optim))([torch.nn.Parameter(torch.zeros(3))])
    torch_class, lr = OPTIMIZERS[name]
    assert type(optimizer) is torch_class
    assert optimizer.param_groups[0]["lr"] == lr
    assert optimizer.param_groups[0].get("momentum", 0.0) == (0.9 if name == "momentum" else 0.0)
    assert choices["optim"] == name


def test_defaults_are_digits_with_the_wide_mlp_and_adam() -> None:
    cfg, choices = compose_config()
    assert choices == {"data": "digits", "net": "mlp", "optim": "adam", "device": "auto"}
    model = build_model(body_factory(plain(cfg.net)), inputs=build_inputs(plain(cfg.data.inputs)), image_shape=(1, 8,
        8), n_classes=10)
    assert isinstance(model.body, MLPBody) and model.body.in_features == 64
    assert [m.out_features for m in model.body.layers if isinstance(m, torch.nn.Linear)] == [512, 512]
    assert isinstance(model.inputs, Scale) and model.inputs.divisor == 16.0


def test_cnn_on_digits_is_sized_for_8x8_without_touching_the_shared_net_config() -> None:
    cfg, _ = compose_config(["net=cnn"])
    model = build_model(body_factory(plain(cfg.net)), inputs=build_inputs(plain(cfg.data.inputs)), image_shape=(1, 8,
        8), n_classes=10)
    assert isinstance(model.body, CNNBody)
    assert model.body.flat_features == 128 * 2 * 2  # 8x8 -> pool -> 4x4 -> pool -> 2x2
    assert model(digits_batch()).shape == (5, 10)
    shared = (REPO / "conf" / "net" / "cnn.yaml").read_text()
    assert "kernel_sizes: [8, 4, 3]" in shared  # the DQN default stays the Nature stack


def test_the_digits_cnn_trains_with_label_smoothing_and_other_choices_do_not() -> None:
    assert compose_config(["net=cnn"])[0].label_smoothing == 0.1  # conf/data_net/digits_cnn.yaml
    assert compose_config(["net=cnn", "label_smoothing=0"])[0].label_smoothing == 0.0  # the command line wins
    assert compose_config()[0].label_smoothing == 0.0
    assert compose_config(["data=mnist", "net=cnn"])[0].label_smoothing == 0.0


def test_label_smoothing_is_applied_to_the_training_loss(tmp_path: Path, mlp_run: Path) -> None:
    smoothed = train_in(tmp_path, *SMALL_MLP, "label_smoothing=0.5")
    plain = load_checkpoint(mlp_run)["metrics"]
    # Same seed, same batches: smoothed targets keep the cross-entropy well above the plain run's.
    assert smoothed.history[0][tb.SUPERVISED_TRAIN_LOSS] > plain[tb.SUPERVISED_TRAIN_LOSS] + 0.3
    with pytest.raises(RlkitError, match=r"label_smoothing must lie in \[0, 1\), got 1.0"):
        train_in(tmp_path / "bad", *SMALL_MLP, "label_smoothing=1.0")


def test_perceptron_is_inputs_to_ten_sigmoid_units() -> None:
    cfg, _ = compose_config(["net=perceptron"])
    for image_shape, n_inputs in (((1, 8, 8), 64), ((1, 28, 28), 784)):
        model = build_model(body_factory(plain(cfg.net)), inputs=Scale(divisor=255), image_shape=image_shape,
            n_classes=10)
        linear, act = model.body.layers[1], model.body.layers[2]
        assert (linear.in_features, linear.out_features) == (n_inputs, 10)
        assert isinstance(act, torch.nn.Sigmoid)
        assert (model.head.linear.in_features, model.head.linear.out_features) == (10, 10)


def test_mnist_cnn_fits_28x28_images() -> None:
    cfg, _ = compose_config(["data=mnist", "net=cnn"])
    assert cfg.data.loader.path is None and cfg.data.inputs.divisor == 255
    model = build_model(body_factory(plain(cfg.net)), inputs=build_inputs(plain(cfg.data.inputs)), image_shape=(1, 28,
        28), n_classes=10)
    assert model.body.flat_features == 64 * 7 * 7
    assert model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape == (2, 10)


def test_a_net_too_large_for_the_images_is_refused_with_their_size() -> None:
    nature_cnn = functools.partial(CNNBody)  # 8x8 kernels with stride 4 cannot read 8x8 digits twice
    with pytest.raises(RlkitError, match="the net config does not fit 1x8x8 images"):
        build_model(nature_cnn, inputs=Scale(divisor=16), image_shape=(1, 8, 8), n_classes=10)


@pytest.mark.parametrize(("value", "expected"), [("full", 1347), (1, 1), (32, 32), (1347, 1347)])
def test_batch_size_full_is_batch_gradient_descent(value: int | str, expected: int) -> None:
    assert batch_size_for(value, 1347) == expected


@pytest.mark.parametrize("value", [0, 1348, "all", -4])
def test_batch_size_outside_the_training_set_is_refused(value: int | str) -> None:
    with pytest.raises(RlkitError, match=f"batch_size={value} must be 1..1347 .* or 'full'"):
        batch_size_for(value, 1347)


# --- confusion matrix -----------------------------------------------------------------------------


def test_confusion_matrix_counts_true_rows_and_predicted_columns() -> None:
    counts = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), n_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


@pytest.mark.parametrize("use_matplotlib", [True, False])
def test_confusion_image_is_rgb_uint8(use_matplotlib: bool) -> None:
    image = confusion_image(np.diag([3, 4, 5]), use_matplotlib=use_matplotlib)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.min() < 100 and image.max() == 255  # dark diagonal cells on a white background


# --- a short run and its checkpoint ---------------------------------------------------------------


def test_a_run_logs_the_fixed_tags_and_writes_a_supervised_checkpoint(mlp_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(mlp_run))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert scalars == {tb.SUPERVISED_TRAIN_LOSS, tb.SUPERVISED_TRAIN_ACCURACY, tb.SUPERVISED_TEST_LOSS,
        tb.SUPERVISED_TEST_ACCURACY}
    # Per-epoch charts never share DQN's env-step train/loss.
    assert all(tag.startswith("supervised/") for tag in scalars)
    assert [e.step for e in events.Scalars(tb.SUPERVISED_TEST_ACCURACY)] == [1, 2]
    assert events.Tags()["images"] == [tb.SUPERVISED_CONFUSION_MATRIX]
    checkpoint = load_checkpoint(mlp_run)
    assert (checkpoint["task"], checkpoint["data"], checkpoint["net"], checkpoint["optim"]) == ("supervised", "digits",
        "mlp", "adam")
    assert checkpoint["config"]["net"]["hidden"] == [32, 16]
    assert np.array(checkpoint["metrics"]["confusion"]).sum() == 450
    assert checkpoint["metrics"][tb.SUPERVISED_TEST_ACCURACY] > 0.5  # two epochs are far better than chance (0.1)


def test_same_seed_same_weights(tmp_path: Path, mlp_run: Path) -> None:
    train_in(tmp_path, *SMALL_MLP)
    again, first = load_body_state(tmp_path), load_body_state(mlp_run)
    assert all(torch.equal(again[name], first[name]) for name in first)
    train_in(tmp_path, *SMALL_MLP, "seed=1")
    assert not torch.equal(load_body_state(tmp_path)["layers.1.weight"], first["layers.1.weight"])


def test_a_body_trained_on_digits_loads_into_a_q_network_with_identical_features(mlp_run: Path) -> None:
    checkpoint = load_checkpoint(mlp_run)
    classifier_body = MLPBody(in_features=64, hidden=[32, 16])
    classifier_body.load_state_dict(checkpoint["body_state"])
    q_net = Network(body=MLPBody(in_features=64, hidden=[32, 16]), head=LinearHead(in_features=16, out_features=4),
        inputs=Scale(divisor=16))
    obs = digits_batch()
    with torch.no_grad():
        expected = classifier_body(obs.float() / 16)
        assert not torch.equal(q_net.body(q_net.inputs(obs)), expected)  # a fresh body differs
        init_body_from_supervised(q_net.body, mlp_run)
        assert torch.equal(q_net.body(q_net.inputs(obs)), expected)
        assert q_net(obs).shape == (5, 4)


def test_init_body_names_the_parameter_and_both_shapes_on_mismatch(mlp_run: Path) -> None:
    wider = MLPBody(in_features=64, hidden=[48, 16])
    before = wider.layers[1].weight.detach().clone()
    with pytest.raises(RlkitError, match=r"body parameter layers\.1\.weight has shape \(48, 64\) here but \(32, 64\)"):
        init_body_from_supervised(wider, mlp_run)
    assert torch.equal(wider.layers[1].weight, before)  # nothing was copied


def test_init_body_names_parameters_a_different_body_lacks(mlp_run: Path) -> None:
    cnn = CNNBody(in_channels=1, input_hw=(8, 8), channels=[4], kernel_sizes=[3], strides=[1], hidden=16)
    with pytest.raises(RlkitError, match=r"this body has \['conv\.0\.bias'.*the run has \['layers\.1\.bias'"):
        init_body_from_supervised(cnn, mlp_run)


def test_init_body_refuses_a_checkpoint_that_is_not_supervised(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / FILENAME, {"env": "taxi", "agent": "q_learning", "agent_state": {}})
    with pytest.raises(RlkitError, match="is not a supervised run"):
        init_body_from_supervised(MLPBody(in_features=64), tmp_path)


# --- command line ---------------------------------------------------------------------------------


def supervised_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlkit.supervised", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cli_trains_prints_accuracy_and_writes_the_run_folder(tmp_path: Path) -> None:
    done = supervised_cli("epochs=1", "net=perceptron", "progress=false", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "test accuracy 0." in done.stdout and f"run folder: {tmp_path}" in done.stdout
    assert (tmp_path / FILENAME).is_file()
    assert not list(tmp_path.glob("*.log"))  # Hydra's job logging is off: no empty supervised.log


def test_cli_errors_are_one_line_with_exit_status_2(tmp_path: Path) -> None:
    done = supervised_cli("data=mnist", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert done.stderr.startswith("error: data=mnist needs data.path=<folder with train-images-idx3-ubyte[.gz]")
    assert done.stderr.count("\n") == 1


def test_unknown_group_options_are_refused_with_the_choices() -> None:
    with pytest.raises(RlkitError, match="unknown net 'resnet'; choose one of: cnn, minatar, mlp, perceptron$"):
        check_group_overrides(["net=resnet"], conf_dir(), CONFIG_GROUPS)
    with pytest.raises(RlkitError,
            match="unknown optim 'lbfgs'; choose one of: adadelta, adagrad, adam, momentum, rmsprop, sgd$"):
        check_group_overrides(["optim=sgd,lbfgs"], conf_dir(), CONFIG_GROUPS)
    with pytest.raises(RlkitError, match="unknown data 'cifar'; choose one of: digits, mnist$"):
        check_group_overrides(["data=cifar"], conf_dir(), CONFIG_GROUPS)


# --- accuracy targets (issue 5) -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("net", "target"), [("mlp", 0.975), ("cnn", 0.985)])
def test_digits_accuracy_targets(tmp_path: Path, net: str, target: float) -> None:
    result = train_in(tmp_path, f"net={net}", "progress=false")
    assert result.final[tb.SUPERVISED_TEST_ACCURACY] >= target
    assert result.train_seconds < 60


@pytest.mark.slow
def test_digits_cnn_holds_on_the_seeds_that_fell_short_before() -> None:
    """Issue 11: median >= 0.985 and worst >= 0.980 over seeds 0-9 (docs/supervised.md). Seeds 5 and 7 were the
    weakest without label smoothing (0.9822, 0.9800); with seed 0 they make a 3-seed check that takes a minute."""
    accuracies = []
    for seed in (0, 5, 7):
        with tempfile.TemporaryDirectory() as run_dir:
            accuracies.append(train_in(Path(run_dir), "net=cnn", f"seed={seed}",
                "progress=false").final[tb.SUPERVISED_TEST_ACCURACY])
    assert min(accuracies) >= 0.980 and sorted(accuracies)[1] >= 0.985, accuracies


def test_dqn_body_init_loads_a_supervised_body_and_refuses_a_mismatch(tmp_path):
    """agent.body_init=<supervised run>: the Q-network starts from the trained body, shapes checked."""
    import functools

    import gymnasium as gym
    from conftest import build_dqn_for

    from rlkit.agents.dqn import DQNAgent
    from rlkit.errors import RlkitError
    from rlkit.nets import MLPBody

    run_dir = tmp_path / "sup"
    proc = subprocess.run(
        [sys.executable, "-m", "rlkit.supervised", "epochs=1", "net.hidden=[32]", "progress=false",
            f"hydra.run.dir={run_dir}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    trained = load_body_state(run_dir)

    def agent(obs_dim: int, hidden: tuple[int, ...]) -> DQNAgent:
        return build_dqn_for(
            gym.spaces.Box(0.0, 16.0, (obs_dim,)), gym.spaces.Discrete(3), net=functools.partial(MLPBody,
                hidden=hidden), optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
            body_init=str(run_dir),
        )

    loaded = agent(64, (32,)).q_net.body.state_dict()
    assert loaded.keys() == trained.keys() and all(torch.equal(loaded[k], trained[k]) for k in trained)
    with pytest.raises(RlkitError, match=r"has shape \(32, 4\) here but \(32, 64\) in the supervised run"):
        agent(4, (32,))
