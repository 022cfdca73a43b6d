#!/usr/bin/env bash
# Draws the main job's pictures with gnuplot (pngcairo) from the CSV files the examples wrote.
# Usage: scripts/demo-plots.sh DEMO_DIR   (writes DEMO_DIR/*.png; esn/ pictures if DEMO_DIR/esn exists)
set -euo pipefail
dir=${1:?usage: demo-plots.sh DEMO_DIR}
command -v gnuplot >/dev/null || { echo "demo-plots: gnuplot is not installed (scripts/install-deps.sh)" >&2; exit 1; }

gnuplot <<GP
set terminal pngcairo size 900,420 font "Sans,10" noenhanced
set datafile separator ","
set key autotitle columnhead

set output "$dir/training.png"
set multiplot layout 1,2 title "Fashion-MNIST spiking classifier: training"
set xlabel "epoch"; set ylabel "loss"; set grid; set xtics 1
plot "$dir/metrics.csv" using 1:2 with linespoints lw 2 title "train loss"
set ylabel "accuracy (%)"; set key bottom right
plot "$dir/metrics.csv" using 1:(100*\$3) with linespoints lw 2 title "train", \
     "" using 1:(100*\$4) with linespoints lw 2 title "test"
unset multiplot

set output "$dir/raster.png"
set multiplot layout 1,2 title "One test image, step by step"
set xlabel "time step"; set ylabel "hidden neuron"; unset key; set grid
set title "hidden LIB spikes"
plot "$dir/raster.csv" using 1:2 with points pt 7 ps 0.4 lc rgb "black"
set ylabel "membrane"; set key outside right; set title "output LI membranes"
plot for [c=2:11] "$dir/membranes.csv" using 1:c with linespoints lw 2 title columnhead(c)
unset multiplot

set output "$dir/confusion.png"
set terminal pngcairo size 560,500 font "Sans,10"
unset grid; set key noautotitle; unset key; set title "Confusion matrix (test set)"
set xlabel "predicted class"; set ylabel "true class"
set xrange [-0.5:9.5]; set yrange [9.5:-0.5]; set xtics 0,1,9; set ytics 0,1,9
set palette defined (0 "white", 1 "#08306b"); set cbrange [0:*]
set datafile separator ","
plot "$dir/confusion.csv" matrix with image, \
     "" matrix using 1:2:(sprintf("%d",\$3)) with labels font "Sans,7" tc rgb "#c04000"
GP

if [ -f "$dir/esn/forecast.csv" ]; then
gnuplot <<GP
set terminal pngcairo size 900,360 font "Sans,10"
set datafile separator ","
set key autotitle columnhead
set output "$dir/esn/mackey_glass.png"
set title "Echo state network: Mackey-Glass forecast (free-running) against the truth"
set xlabel "step"; set ylabel "x"; set grid
plot "$dir/esn/forecast.csv" using 1:2 with lines lw 2 lc rgb "gray40" title "truth", \
     "" using 1:3 with lines lw 2 lc rgb "#d04000" title "forecast"
GP
fi
