"""The main job survives a SIGKILL: training is killed in the middle of an epoch, resumed with
--resume from the newest checkpoint, and ends with exactly the weights of an uninterrupted run of
the same seed. Then the deployment program streams the trained model in new processes (pause in
the middle of an image, resume in a third process) and agrees with the training's evaluation.
Uses a small slice of Fashion-MNIST (Debian's dataset-fashion-mnist) to stay fast."""
import os
import signal
import subprocess
import sys
import tempfile

import torch

BUILD = os.environ.get("TT_BINARY_DIR", "build")
TRAIN = os.path.join(BUILD, "examples", "fashion_mnist_train")
DEPLOY = os.path.join(BUILD, "examples", "fashion_mnist_deploy")
DATA = "/usr/share/datasets/fashion-mnist"
SMALL = ["--train-limit", "3000", "--test-limit", "300", "--epochs", "3", "--hidden", "64",
         "--time-steps", "4", "--batch", "100", "--seed", "7"]


def train(out, *extra):
    return subprocess.run([TRAIN, "--out", out, *SMALL, *extra], capture_output=True, text=True, timeout=300)


def final_weights(out):
    checkpoint = torch.load(os.path.join(out, "checkpoints", "epoch_3.pt"))
    return checkpoint["model_state_dict"]


def kill_mid_epoch(out, epoch, percent):
    """Starts training and SIGKILLs it once its progress line says `epoch E/3 ... P%`."""
    process = subprocess.Popen([TRAIN, "--out", out, *SMALL], stdout=subprocess.PIPE, text=True)
    marker = f"epoch {epoch}/3 ["
    for line in process.stdout:
        if line.startswith(marker) and f"{percent:3d}%" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"training ended before it was killed (rc {process.returncode})"


def main():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        print(f"SKIP: no Fashion-MNIST in {DATA}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        whole, killed = os.path.join(tmp, "whole"), os.path.join(tmp, "killed")
        run = train(whole)
        assert run.returncode == 0, run.stderr
        assert "test accuracy" in run.stdout

        kill_mid_epoch(killed, epoch=2, percent=50)
        checkpoints = sorted(os.listdir(os.path.join(killed, "checkpoints")))
        assert checkpoints == ["epoch_1.pt"], checkpoints  # killed during epoch 2: no temp file left either
        resumed = train(killed, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert "resumed from" in resumed.stdout and "(epoch 1," in resumed.stdout, resumed.stdout

        a, b = final_weights(whole), final_weights(killed)
        assert list(a) == list(b), (list(a), list(b))
        for key in a:
            assert torch.equal(a[key], b[key]), f"{key}: max |diff| {(a[key] - b[key]).abs().max().item()}"
        with open(os.path.join(whole, "metrics.csv")) as f1, open(os.path.join(killed, "metrics.csv")) as f2:
            rows1, rows2 = f1.read().splitlines(), f2.read().splitlines()
        assert [r.split(",")[:4] for r in rows1] == [r.split(",")[:4] for r in rows2]  # all but seconds
        print(f"killed in epoch 2, resumed: {len(a)} tensors bitwise equal to the uninterrupted run")

        # Python reads the checkpoint with the key names it writes by hand.
        checkpoint = torch.load(os.path.join(killed, "checkpoints", "epoch_3.pt"))
        assert checkpoint["epoch"] == 3 and isinstance(checkpoint["loss"], float)
        assert {"model_state_dict", "optimizer_state_dict"} <= set(checkpoint)
        assert set(checkpoint["optimizer_state_dict"]) == {"state", "param_groups"}

        # Deployment: new processes, batch 1, one time step at a time.
        check = subprocess.run([DEPLOY, "--out", killed, "check", "--images", "100"], capture_output=True, text=True,
                               timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "100/100 predictions equal" in check.stdout, check.stdout
        pause = subprocess.run([DEPLOY, "--out", killed, "pause", "--image", "3"], capture_output=True, text=True)
        assert pause.returncode == 0, pause.stderr
        resume = subprocess.run([DEPLOY, "--out", killed, "resume"], capture_output=True, text=True)
        assert resume.returncode == 0, resume.stdout + resume.stderr
        assert "identical to the uninterrupted stream: yes" in resume.stdout, resume.stdout
        for name in ["metrics.csv", "predictions.csv", "confusion.csv", "raster.csv", "membranes.csv", "model.pt"]:
            assert os.path.getsize(os.path.join(killed, name)) > 0, name
        print("deployment: predictions equal, paused and resumed stream identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
