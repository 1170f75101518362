#!/bin/bash
# ACT lift sweep on the device machine (one GPU, 16 cores), one call:
#   collect the 100 lift demos (seeds 0-99, 10 processes, merged), train the variants below
#   concurrently on the GPU (fp32, --no-amp, as on the CPU), evaluate each on the issue's 50
#   seeds (100000-) and 50 tuning seeds (200000-), one core per evaluation.
# Sizes are env-overridable so the same script dry-runs here on the CPU.
set -u
T0=$(date +%s)
el() { echo "[$(($(date +%s) - T0))s] $*"; }
OUT=${OUT:-/tmp/devout}
W=${W:-/tmp/w}
PY=${PY:-python3}
EPISODES_PER=${EPISODES_PER:-10} # x10 processes
STEPS=${STEPS:-}                 # empty: the preset's 4000
EVAL_EPISODES=${EVAL_EPISODES:-50}
DEVICE=${DEVICE:-cuda}
TRAIN_DEADLINE=${TRAIN_DEADLINE:-445} # s after start: stop training, evaluate the last checkpoint
EVAL_DEADLINE=${EVAL_DEADLINE:-575}
rm -rf "$W"
mkdir -p "$W/logs" "$W/runs" "$OUT"

if [ -d .whl ] && [ "$PY" = python3 ]; then
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
		--target /tmp/site .whl/*.whl || exit 1
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	export PYTHONPATH=/tmp/site:$PWD/.devjob/site:$PWD
	egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
	[ -f $egl ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
	nvidia-smi -L
fi
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
RL="$PY -m robot_learning.cli"
$PY -c "import torch, mujoco, zarr; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'mujoco', mujoco.__version__, 'zarr', zarr.__version__)" || exit 1
el "installed"

# 1. the demos: seeds 0..99 as 10 stores of 10, merged in seed order
pids=()
for i in 0 1 2 3 4 5 6 7 8 9; do
	OMP_NUM_THREADS=1 $RL sim collect --task lift --episodes "$EPISODES_PER" --size 96x128 \
		--store "$W/lift_$i.zarr" --seed $((i * EPISODES_PER)) >"$W/logs/collect_$i.log" 2>&1 &
	pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || {
		el "collect $i failed"
		tail -20 "$W/logs/collect_$i.log"
		tar czf "$OUT/logs.tgz" -C "$W" logs
		exit 1
	}
done
$RL store merge --to "$W/lift.zarr" "$W"/lift_{0..9}.zarr >"$W/logs/merge.log" 2>&1 || {
	cat "$W/logs/merge.log"
	exit 1
}
$RL store info "$W/lift.zarr" | head -20
el "collected"

# 2. the variants, trained side by side on the GPU
declare -A VARIANTS=(
	[preset]=""
	[full_res]="--set image_size=[96,128] --set crop_size=[88,118]"
	[enc32]="--set encoder_width=32"
	[no_crop]="--set crop_size=null"
	[dim256]="--set dim_model=256 --set dim_feedforward=1024"
)
declare -A TRAIN_PID=()
for name in "${!VARIANTS[@]}"; do
	# shellcheck disable=SC2086
	OMP_NUM_THREADS=2 $RL train --policy act --preset sim --store "$W/lift.zarr" \
		--out "$W/runs/$name" --cache-images --val-fraction 0 --checkpoint-every 1000 \
		--device "$DEVICE" --no-amp --seed 0 ${STEPS:+--steps $STEPS} ${VARIANTS[$name]} \
		>"$W/logs/train_$name.log" 2>&1 &
	TRAIN_PID[$name]=$!
done
while :; do
	running=0
	for name in "${!TRAIN_PID[@]}"; do
		kill -0 "${TRAIN_PID[$name]}" 2>/dev/null && running=$((running + 1))
	done
	[ $running = 0 ] && break
	if [ $(($(date +%s) - T0)) -ge "$TRAIN_DEADLINE" ]; then
		el "training deadline: stopping $running run(s)"
		for name in "${!TRAIN_PID[@]}"; do kill "${TRAIN_PID[$name]}" 2>/dev/null; done
		sleep 3
		break
	fi
	sleep 5
done
for name in "${!TRAIN_PID[@]}"; do
	wait "${TRAIN_PID[$name]}"
	echo "train $name rc=$? $(tr '\r' '\n' <"$W/logs/train_$name.log" | grep 'steps in' | tail -1)"
done
el "trained"

# 3. evaluation: one core per (variant, seed block)
declare -A EVAL_PID=()
for name in "${!VARIANTS[@]}"; do
	[ -f "$W/runs/$name/checkpoint/config.json" ] || {
		echo "no checkpoint for $name"
		continue
	}
	for seed in 100000 200000; do
		OMP_NUM_THREADS=1 $RL eval --checkpoint "$W/runs/$name/checkpoint" --task lift \
			--episodes "$EVAL_EPISODES" --seed $seed --json \
			>"$W/runs/eval_${name}_$seed.json" 2>"$W/logs/eval_${name}_$seed.log" &
		EVAL_PID["${name}_$seed"]=$!
	done
done
while :; do
	running=0
	for k in "${!EVAL_PID[@]}"; do kill -0 "${EVAL_PID[$k]}" 2>/dev/null && running=$((running + 1)); done
	[ $running = 0 ] && break
	if [ $(($(date +%s) - T0)) -ge "$EVAL_DEADLINE" ]; then
		el "eval deadline: stopping $running evaluation(s)"
		for k in "${!EVAL_PID[@]}"; do kill "${EVAL_PID[$k]}" 2>/dev/null; done
		break
	fi
	sleep 3
done
el "evaluated"

$PY - "$W" >"$OUT/summary.json" <<'EOF'
import json, pathlib, sys
w = pathlib.Path(sys.argv[1])
out = {}
for f in sorted(w.glob("runs/eval_*.json")):
    text = f.read_text().strip()
    try:
        r = json.loads(text.splitlines()[-1]) if text else None
    except json.JSONDecodeError:
        r = None
    out[f.stem] = r
for d in sorted(p for p in (w / "runs").iterdir() if p.is_dir()):
    cfg = d / "checkpoint" / "config.json"
    if cfg.exists():
        out[f"config_{d.name}"] = json.loads(cfg.read_text())
print(json.dumps(out, indent=1))
EOF
$PY - "$OUT/summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
for k, r in s.items():
    if k.startswith("eval_"):
        print(k, None if r is None else (r.get("successes"), r.get("episodes"), r.get("success_rate")))
EOF
for name in "${!VARIANTS[@]}"; do
	tr '\r' '\n' <"$W/logs/train_$name.log" | tail -5 >"$W/logs/train_${name}_tail.log"
done
tar czf "$OUT/logs.tgz" -C "$W" logs
el "done"
