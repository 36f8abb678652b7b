"""The tutorial-style reference training loop that the benchmarks compare aecore against.

What tutorials write (torchvision.datasets.MNIST + pytorch/examples vae/main.py): a Dataset that keeps the images
as arrays and makes a PIL image + `transforms.ToTensor()` per item, `DataLoader(shuffle=True, batch_size=100,
num_workers=0)`, plain (not fused) `torch.optim.Adam(lr=1e-3)`, NCHW tensors, the global RNG seeded once, and a
test loop over a DataLoader with batch 1000 under `torch.no_grad()`. The loss is aecore's (reconstruction summed
per image, + beta * KL for VAEs, batch mean), so the numbers are comparable with the library's.
"""
from __future__ import annotations

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchvision import transforms

from aecore.fastpath import plain_pytorch
from aecore.losses import objective

BATCH, LR, EVAL_BATCH = 100, 1e-3, 1000


class TutorialImages(TorchDataset):
    """Like torchvision.datasets.MNIST: one array of single-channel images, a PIL image per item, then the
    transform. MNIST-like data (values k/255) is kept as uint8 (mode "L"), anything else as float32 (mode "F")."""

    def __init__(self, images: torch.Tensor, transform=None):
        if images.shape[1] != 1:
            raise ValueError("the tutorial loop handles single-channel images only")
        u8 = (images * 255).round()
        self.data = (u8.to(torch.uint8) if torch.equal(u8 / 255, images) else images)[:, 0].numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img = Image.fromarray(self.data[index])  # uint8 -> mode "L" (ToTensor divides by 255); float32 -> "F"
        img = self.transform(img) if self.transform is not None else img
        return img, 0





def run_tutorial(model, train_x, test_x, epochs: int, seed: int, recon: str = "bce", beta: float = 1.0,
                 on_epoch=None) -> dict:
    """Train `model` the tutorial way; the test loss after every epoch, and training-step time only. The layers run
    in their plain PyTorch forms (an aecore model's methods would otherwise take this machine's fast paths)."""
    with plain_pytorch():
        return _run_tutorial(model, train_x, test_x, epochs, seed, recon, beta, on_epoch)


def _run_tutorial(model, train_x, test_x, epochs, seed, recon, beta, on_epoch) -> dict:
    torch.manual_seed(seed)  # tutorials seed the global RNG: shuffling and the VAE's sampling use it
    to_tensor = transforms.ToTensor()
    train_loader = DataLoader(TutorialImages(train_x, to_tensor), batch_size=BATCH, shuffle=True, num_workers=0)
    test_loader = DataLoader(TutorialImages(test_x, to_tensor), batch_size=EVAL_BATCH, shuffle=False,
                             num_workers=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    train_s, test_losses, train_s_curve, n_seen, train_loss = 0.0, [], [], 0, 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        train_loss = 0.0
        for x, _ in train_loader:
            optimizer.zero_grad()
            loss = objective(model(x), x, recon, beta)["loss"].mean()
            loss.backward()
            train_loss += loss.item() * len(x)
            optimizer.step()
            n_seen += len(x)
        train_s += time.perf_counter() - t0
        train_s_curve.append(train_s)
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for x, _ in test_loader:
                test_loss += objective(model(x), x, recon, beta)["loss"].sum().item()
        test_losses.append(test_loss / len(test_loader.dataset))
        if on_epoch is not None:
            on_epoch(epoch, test_losses[-1])
    return dict(train_s=train_s, samples=n_seen, samples_per_s=n_seen / max(train_s, 1e-9),
                train_loss=train_loss / len(train_loader.dataset), test_loss=test_losses[-1],
                test_curve=test_losses, train_s_curve=train_s_curve)

