"""Nothing lost, nothing silently ignored: durable checkpoints, resume conflicts, logs and RNGs on resume, Ctrl-C."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from seqgan_env.checkpoint import atomic_save, load_checkpoint


def test_atomic_save_fsyncs_file_and_folder_without_touching_the_umask(tmp_path, monkeypatch):
    umask = os.umask(0o022)
    os.umask(umask)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def no_umask(mask):
        raise AssertionError("os.umask changes the mask of the whole process")

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "umask", no_umask)
    target = tmp_path / "sub" / "ckpt.pt"
    atomic_save({"x": torch.arange(3)}, target)
    assert len(synced) == 2
    assert synced[0].startswith(str(target.parent / ".ckpt.pt.")) and synced[0].endswith(".tmp")  # the data
    assert synced[1] == str(target.parent)  # the rename
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["ckpt.pt"]  # no temporary left


def test_atomic_save_leaves_the_old_file_when_saving_fails(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_save({"format": "seqgan-env/1", "kind": "x", "v": 1}, target)
    with pytest.raises(Exception):
        atomic_save({"v": lambda: None}, target)  # torch.save cannot pickle a lambda
    assert load_checkpoint(target)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
