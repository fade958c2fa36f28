"""Train the example CNN with CNNVizCallback attached, then browse it with ``tensorboard --logdir runs``.

    python examples/cifar10/train.py                      # CIFAR-10 if available, else the shapes dataset
    python examples/cifar10/train.py --dataset shapes --epochs 2 --steps 150

Without internet (and without a local CIFAR-10 copy) it says so in one line and uses the
built-in procedurally generated shapes dataset, so it always runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from tb_cnnviz.callbacks import CNNVizCallback
from tb_cnnviz.datasets import ShapesDataset
from tb_cnnviz.models import small_vgg

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_data(name: str, data_dir: str):
    """``(train, test, class_names, dataset_name)``; ``auto`` falls back from CIFAR-10 to shapes."""
    if name in ("auto", "cifar10"):
        try:
            import torchvision
            from torchvision import transforms

            previous = socket.getdefaulttimeout()
            socket.setdefaulttimeout(20)
            try:
                to_tensor = transforms.ToTensor()
                train = torchvision.datasets.CIFAR10(data_dir, train=True, download=True, transform=to_tensor)
                test = torchvision.datasets.CIFAR10(data_dir, train=False, download=True, transform=to_tensor)
            finally:
                socket.setdefaulttimeout(previous)
            return train, test, CIFAR_CLASSES, "cifar10"
        except Exception as error:  # no network, no local copy
            if name == "cifar10":
                raise SystemExit(
                    f"error: --dataset cifar10: CIFAR-10 is not available ({type(error).__name__}: {error})"
                )
            print(
                f"CIFAR-10 not available ({type(error).__name__}); using the built-in shapes dataset instead.",
                flush=True,
            )
    return ShapesDataset(10000, seed=0), ShapesDataset(1000, seed=1), ShapesDataset.classes, "shapes"


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predictions = model(images.to(device)).argmax(dim=1).cpu()
            correct += int((predictions == labels).sum())
            total += len(labels)
    model.train()
    return correct / max(total, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("auto", "cifar10", "shapes"), default="auto")
    parser.add_argument("--data-dir", default="data", help="where CIFAR-10 is (or is downloaded to)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per epoch (default: the whole training set)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv layer")
    parser.add_argument("--logdir", default=None, help="run directory (default: runs/<dataset>-<time>)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--every", type=int, default=None, help="log every N steps (default: the callback's defaults)"
    )
    parser.add_argument(
        "--embedding-images",
        type=int,
        default=500,
        help="held-out images in the per-epoch t-SNE map (0: off)",
    )
    parser.add_argument("--save", default=None, metavar="PATH", help="save the trained state_dict here")
    args = parser.parse_args(argv)
    for flag in ("epochs", "batch_size", "width"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train, test, class_names, dataset_name = load_data(args.dataset, args.data_dir)
    logdir = args.logdir or os.path.join("runs", f"{dataset_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    loader = DataLoader(
        train,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    test_loader = DataLoader(Subset(test, range(min(len(test), 2000))), batch_size=256)
    probe_images, probe_labels = zip(*(test[i] for i in range(8)))
    probe = (torch.stack(probe_images), torch.tensor(probe_labels))
    held_out = [test[i] for i in range(8, 8 + min(args.embedding_images, len(test) - 8))]
    embedding_probe = (
        (torch.stack([image for image, _ in held_out]), torch.tensor([label for _, label in held_out]))
        if held_out
        else None
    )

    model = small_vgg(num_classes=len(class_names), width=args.width).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = min(args.steps or len(loader), len(loader))
    # --every applies to the cheap kinds; galleries and maps come once per epoch.
    every = (
        {kind: args.every for kind in ("kernels", "activations", "dead_filters", "gradcam")}
        if args.every
        else None
    )
    # Per epoch (on_epoch_end below): a gallery of conv3's first 16 filter patterns and a
    # t-SNE map of held-out images, both computed in the background.
    with CNNVizCallback(
        model,
        log_dir=logdir,
        probe=probe,
        class_names=class_names,
        every_n_steps=every,
        pattern_layers=["features.conv3"],
        pattern_channels=16,
        pattern_steps=48,
        embedding_probe=embedding_probe,
    ) as viz:
        step = 0
        for epoch in range(args.epochs):
            bar = tqdm(
                total=steps_per_epoch,
                desc=f"epoch {epoch + 1}/{args.epochs}",
                file=sys.stdout,
                dynamic_ncols=True,
            )
            for batch, (images, labels) in enumerate(loader):
                if batch >= steps_per_epoch:
                    break
                loss = nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                viz.on_step_end(step)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update(1)
            bar.close()
            viz.on_epoch_end(step)
            accuracy = evaluate(model, test_loader, device)
            viz.writer.add_scalar("accuracy/test", accuracy, step)
            print(f"epoch {epoch + 1}: test accuracy {accuracy:.3f}", flush=True)
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"saved the trained weights to {args.save}")
    print(
        f"\nLogged to {logdir}. To browse it:\n    tensorboard --logdir {os.path.dirname(logdir.rstrip('/')) or logdir}\nthen open the CNN Viz tab."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
