#!/usr/bin/env bash
# The main job: train a spiking classifier on Fashion-MNIST with a checkpoint per epoch, serve it
# as a stream in new processes (pause and resume mid-image), run the echo state network forecast,
# and draw the pictures. Usage: scripts/demo.sh [BUILD_DIR]   (TT_DEMO_DIR overrides the output)
set -euo pipefail
build=${1:-build}
core=$(bash "$(dirname "$0")/openblas-coretype.sh")
if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
out=${TT_DEMO_DIR:-$build/demo}
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)

echo "== 1/5 train on Fashion-MNIST (60,000 images), one checkpoint per epoch, into $out"
"$build/examples/fashion_mnist_train" --out "$out" | tee "$out/train.log"
accuracy_line=$(grep '^test accuracy' "$out/train.log" | tail -1)

echo "== 2/5 a new process streams test images one time step at a time (batch 1, inference mode)"
"$build/examples/fashion_mnist_deploy" --out "$out" check --images 500

echo "== 3/5 stream one image, save the hidden states in the middle; a third process finishes it"
"$build/examples/fashion_mnist_deploy" --out "$out" pause --image 0
"$build/examples/fashion_mnist_deploy" --out "$out" resume

echo "== 4/5 echo state network: Mackey-Glass forecast"
mkdir -p "$out/esn"
"$build/examples/mackey_glass" | tee "$out/esn/mackey_glass.log"

echo "== 5/5 pictures"
bash "$(dirname "$0")/demo-plots.sh" "$out"
seconds=$(( $(date +%s) - start ))

echo
echo "== summary"
echo "$accuracy_line"
echo "time: $((seconds / 60)) min $((seconds % 60)) s on $(nproc) cores"
echo "checkpoints: $out/checkpoints/   final model: $out/model.pt"
echo "pictures:    $(ls "$out"/*.png "$out"/esn/*.png 2>/dev/null | tr '\n' ' ')"
echo "resume training (more epochs):  $build/examples/fashion_mnist_train --out $out --resume --epochs 5"
echo "stream one image:               $build/tools/tracetorch run --model $out/model.pt --inputs $out/example_input.pt"
