"""A supervised run (python -m rlkit.supervised): the digits classifier on the same bodies, optimizers and logger as
DQN. Imported only once a run is checked or started, so `--help` loads no torch, scikit-learn or TensorBoard."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from rlkit import tb
from rlkit.checkpoint import FILENAME, save_checkpoint
from rlkit.config.registry import body_factory, checked, optimizer_factory
from rlkit.config.settings import plain_config
from rlkit.digits.confusion import confusion_image, confusion_matrix
from rlkit.digits.datasets import ImageDataset, load_digits, load_mnist
from rlkit.errors import NonFiniteLossError, RlkitError, shorten
from rlkit.nets import LinearHead, Network, Scale, body_for_shape
from rlkit.nets.transfer import SUPERVISED_TASK
from rlkit.plain import plain_value
from rlkit.runtime import resolve_device, seed_everything

DATASETS: dict[str, Callable[..., ImageDataset]] = {"digits": load_digits, "mnist": load_mnist}
INPUTS: dict[str, Callable[..., nn.Module]] = {"scale": Scale}
NAMED_GROUPS = ("data", "net", "optim")  # recorded by name in hparams and the checkpoint
FLOAT32_MAX = float(np.finfo(np.float32).max)  # a larger rate overflows in torch.optim's step


def build_dataset(loader: Any) -> ImageDataset:
    """The data set a data/ config's loader node names (digits, mnist)."""
    _, load, kwargs = checked(loader, DATASETS, key="data.loader")
    return load(**kwargs)


def build_inputs(inputs: Any) -> nn.Module:
    """The input module a data/ config names (grey levels -> [0, 1]); a divisor of 0 would make every input NaN."""
    _, module, kwargs = checked(inputs, INPUTS, key="data.inputs")
    if not kwargs.get("divisor", 1.0) > 0:  # checked() refused NaN and inf already
        raise RlkitError(f"data.inputs.divisor={kwargs['divisor']} must be a positive number: the brightest grey "
            "level (16 for digits, 255 for MNIST)")
    return module(**kwargs)


def _whole(value: Any) -> bool:
    return plain_value(value, int)[0]


def _number(value: Any) -> bool:
    return plain_value(value, float)[0]  # finite


# Settings that torch and the loop would take and then fail on, or train nothing with (lr=0, eps=0 divides by zero):
# key -> (the test of a value, what it must be).
SETTINGS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_whole, "be a whole number"),
    "epochs": (lambda v: _whole(v) and v >= 1, "be a whole number >= 1"),
    "eval_batch_size": (lambda v: _whole(v) and v >= 1, "be a whole number >= 1"),
    "label_smoothing": (lambda v: _number(v) and 0 <= v < 1, "lie in [0, 1)"),
    "progress": (lambda v: isinstance(v, bool), "be true or false"),
    "data.cpu_threads": (lambda v: _whole(v) and v >= 0, "be a whole number >= 0 (0: torch's default)"),
    "optim.lr": (lambda v: v is None or _number(v) and 0 < v <= FLOAT32_MAX, "be a number > 0 that float32 holds"),
    "optim.eps": (lambda v: v is None or _number(v) and v > 0, "be a number > 0"),
}


def check_settings(cfg: DictConfig) -> None:
    """One line naming the first setting of SETTINGS that cannot train."""
    for key, (valid, must) in SETTINGS.items():
        value = OmegaConf.select(cfg, key)
        if not valid(value):
            raise RlkitError(f"{key} must {must}, got {shorten(value)}")


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one metrics dict per epoch
    train_seconds: float  # training and per-epoch evaluation, without building data and model
    confusion: np.ndarray  # counts[true, predicted] on the test split after the last epoch

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1]


def batch_size_for(value: int | str, n_train: int) -> int:
    """'full' is batch gradient descent; 1 is per-sample SGD; anything between is mini-batch SGD."""
    if str(value) == "full":
        return n_train
    if not str(value).isdigit() or not 1 <= int(value) <= n_train:
        raise RlkitError(
            f"batch_size={value} must be 1..{n_train} (the training images) or 'full' for batch gradient descent"
        )
    return int(value)


def build_model(
    net: Callable[..., nn.Module], *, inputs: nn.Module, image_shape: tuple[int, int, int], n_classes: int
) -> Network:
    """inputs -> body -> classifier head: the composition a Q-network uses, with a class head instead of a Q head."""
    try:
        body = body_for_shape(net, image_shape)  # dense bodies flatten (B, C, H, W) themselves
    except (RuntimeError, ValueError) as exc:
        raise RlkitError(f"the net config does not fit {'x'.join(map(str, image_shape))} images: {exc}") from exc
    return Network(inputs=inputs, body=body, head=LinearHead(in_features=body.out_features, out_features=n_classes))


def fit(
    cfg: DictConfig, model: nn.Module, optimizer: torch.optim.Optimizer, data: ImageDataset, *,
    device: torch.device, batch_size: int, logger: tb.Logger,
) -> FitResult:
    """Shuffle, step through mini-batches, then measure the test split and log: once per epoch, cfg.epochs times."""
    x_train, y_train, x_test, y_test = (
        torch.as_tensor(array, device=device) for array in (data.x_train, data.y_train, data.x_test, data.y_test)
    )
    epochs, eval_batch, smoothing = int(cfg.epochs), int(cfg.eval_batch_size), float(cfg.label_smoothing)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, epochs + 1), unit="epoch", disable=not cfg.progress, dynamic_ncols=True)
    started = time.perf_counter()
    for epoch in bar:
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for batch_B in torch.randperm(len(x_train), generator=generator).to(device).split(batch_size):
            logits_BK = model(x_train[batch_B])
            loss = F.cross_entropy(logits_BK, y_train[batch_B], label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch_B)
            correct += (logits_BK.argmax(dim=1) == y_train[batch_B]).sum()
        model.eval()
        with torch.no_grad():
            logits_NK = torch.cat([model(x_test[i : i + eval_batch]) for i in range(0, len(x_test), eval_batch)])
        predictions = logits_NK.argmax(dim=1)
        test_accuracy = (predictions == y_test).sum().item() / len(y_test)
        metrics = {
            # Running means over the epoch, as the weights moved.
            tb.SUPERVISED_TRAIN_LOSS: loss_sum.item() / len(x_train),
            tb.SUPERVISED_TRAIN_ACCURACY: correct.item() / len(x_train),
            tb.SUPERVISED_TEST_LOSS: F.cross_entropy(logits_NK, y_test).item(),
            tb.SUPERVISED_TEST_ACCURACY: test_accuracy,
        }
        if not math.isfinite(metrics[tb.SUPERVISED_TRAIN_LOSS]):
            raise NonFiniteLossError(f"the training loss became {metrics[tb.SUPERVISED_TRAIN_LOSS]} in epoch {epoch}; "
                "no model is saved: lower optim.lr")
        logger.scalars(metrics, epoch)
        history.append(metrics)
        bar.set_postfix(loss=f"{metrics[tb.SUPERVISED_TRAIN_LOSS]:.4f}", test_acc=f"{test_accuracy:.4f}", refresh=False)
    bar.close()
    train_seconds = time.perf_counter() - started
    confusion = confusion_matrix(data.y_test, predictions.cpu().numpy(), n_classes=data.n_classes)
    logger.image(tb.SUPERVISED_CONFUSION_MATRIX, confusion_image(confusion), epochs)
    return FitResult(history, train_seconds, confusion)


def run(cfg: DictConfig, run_dir: Path, *, choices: Mapping[str, str]) -> FitResult:
    """Build data, model and optimizer from the config, fit, log hparams and write checkpoint.pt; `choices` (Hydra's
    runtime choices) names the data, net and optim options for logs and the checkpoint."""
    check_settings(cfg)
    names = {group: str(choices[group]) for group in NAMED_GROUPS}
    device = resolve_device(cfg.device.name)
    if device.type == "cpu" and int(cfg.data.cpu_threads) > 0:
        torch.set_num_threads(int(cfg.data.cpu_threads))  # tiny models: thread hand-offs cost more than they save
    seed_everything(int(cfg.seed))
    config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    data: ImageDataset = build_dataset(config["data"]["loader"])
    batch_size = batch_size_for(cfg.batch_size, len(data.x_train))
    net = body_factory(config["net"])
    inputs = build_inputs(config["data"]["inputs"])
    model = build_model(net, inputs=inputs, image_shape=data.image_shape, n_classes=data.n_classes).to(device)
    optimizer = optimizer_factory(config["optim"])(model.parameters())  # torch.optim's refusals (lr < 0) are one line
    chosen = " ".join(f"{group}={name}" for group, name in names.items())
    print(f"rlkit.supervised: {chosen} device={device} batch_size={batch_size} -> {run_dir}")
    logger = tb.Logger(run_dir)
    try:
        result = fit(cfg, model, optimizer, data, device=device, batch_size=batch_size, logger=logger)
        final = result.final
        hparams = {**{f"{g}_name": n for g, n in names.items()}, **{k: v for k, v in config.items() if k != "progress"}}
        logger.hparams(hparams, [tb.SUPERVISED_TEST_ACCURACY, tb.SUPERVISED_TEST_LOSS])
    finally:
        logger.close()
    payload = {
        "task": SUPERVISED_TASK,
        **names,
        "config": config,
        "image_shape": list(data.image_shape),
        "n_classes": data.n_classes,
        "model_state": model.state_dict(),
        "body_state": model.body.state_dict(),
        "metrics": {**final, "train_seconds": result.train_seconds, "confusion": result.confusion.tolist()},
    }
    save_checkpoint(run_dir / FILENAME, payload)
    epochs = len(result.history)
    print(
        f"done: {epochs} epoch{'s' * (epochs != 1)} in {result.train_seconds:.1f} s on {device}; "
        f"test accuracy {final[tb.SUPERVISED_TEST_ACCURACY]:.4f} (loss {final[tb.SUPERVISED_TEST_LOSS]:.4f}) "
        f"on {len(data.x_test)} {data.name} images\n"
        f"run folder: {run_dir}\n"
        f"watch:  tensorboard --logdir {run_dir}\n"
        f"reuse:  a DQN run with agent.body_init={run_dir} starts from this body"
    )
    return result


def check_job(cfg: DictConfig) -> None:
    """What can refuse a run, checked before Hydra makes its folder: the data files, the net and optimizer settings."""
    check_settings(cfg)
    config = plain_config(cfg)
    data = build_dataset(config["data"]["loader"])
    batch_size_for(cfg.batch_size, len(data.x_train))
    build_inputs(config["data"]["inputs"])
    body_factory(config["net"])
    optimizer_factory(config["optim"])
