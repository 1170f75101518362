#!/usr/bin/env bash
# issue 9: wall-clock-paced deployment of the Diffusion lift policy, with and without latency
# compensation, on the lockstep evaluation's seeds (100000-100049), nobody taking over
cd /work/main
ck=/work/runs/diffusion_lift_v2_8000
for mode in comp nocomp; do
  flag=""; [ $mode = nocomp ] && flag="--no-latency-compensation"
  OMP_NUM_THREADS=1 .venv/bin/rl deploy --checkpoint $ck --sim --task lift --episodes 50 --seed 100000 --realtime --no-operator $flag --json > /work/runs/latcomp_$mode.json 2> /work/runs/latcomp_$mode.log
done
