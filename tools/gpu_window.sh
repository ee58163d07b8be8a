#!/usr/bin/env bash
# One command for a short lent-GPU window (README, "Training on a lent GPU").
#
#   bash tools/gpu_window.sh prepare            here, with network access to the package registry:
#                                               cp312 wheels into .whl/, the packed subset into .gpu/pack
#   bash tools/gpu_window.sh train OUT [CONFIG] [INIT]
#                                               there (or anywhere): install the wheels if .whl/ holds
#                                               any, train CONFIG (configs/train/gpu-window.yaml) from
#                                               INIT (the default weights), export int8 weights
#
# train writes OUT/train.log, OUT/weights.pt (int8), OUT/export.json and the TensorBoard events
# (OUT/train.tfevents): what comes back from the machine. DVCLIC_DEVICE (cuda), PYTHON (python3) and
# DVCLIC_WHEELS (.whl) override the device, the interpreter and the wheel folder; the CPU test runs
# it with a tiny config.
set -euo pipefail
py=${PYTHON:-python3}
wheels=${DVCLIC_WHEELS:-.whl}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

case "${1:-}" in
prepare)
    mkdir -p "$wheels"
    for pkg in compressai constriction pytorch-msssim; do
        version=$("$py" -c "from importlib.metadata import version; print(version('$pkg'))")
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d "$wheels" "$pkg==$version"
    done
    # What travels is at most 64 MiB: the working tree (tracked and untracked-not-ignored files) and
    # the wheels first, the patches get the rest.
    tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2> /dev/null \
           | awk '{s += $1} END {print s}')
    whl=$(du -sb "$wheels" | cut -f1)
    budget=$(( (64 * 1048576 - tree - whl) * 92 / 100 ))
    rm -rf .gpu/pack
    "$py" -m dvclic pack-data configs/train/dvc-dis-run4.yaml -o .gpu/pack --max-mb "$(( budget / 1000000 ))"
    echo "prepared: $(du -sh "$wheels" | cut -f1) of wheels, $(du -sh .gpu/pack | cut -f1) of patches," \
         "$(( tree / 1000000 )) MB of working tree"
    ;;
train)
    out=${2:?usage: tools/gpu_window.sh train OUT [CONFIG] [INIT]}
    config=${3:-configs/train/gpu-window.yaml}
    mkdir -p "$out"
    if compgen -G "$wheels/*.whl" > /dev/null; then
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/dvclic-site "$wheels"/*.whl
        export PYTHONPATH=/tmp/dvclic-site:$here${PYTHONPATH:+:$PYTHONPATH}
    else
        export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
    fi
    export PYTHONUNBUFFERED=1
    init=${4:-$("$py" -c "from dvclic.store import DEFAULT_WEIGHTS; print(DEFAULT_WEIGHTS)")}
    run=$(mktemp -d "${TMPDIR:-/tmp}/dvclic-gpu-run.XXXXXX")
    {
        "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
              torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
        "$py" -m dvclic train --config "$config" --out "$run" --init "$init" --device "${DVCLIC_DEVICE:-cuda}"
    } 2>&1 | tr '\r' '\n' | awk '!/(it\/s|s\/it)/ || NR % 25 == 0' | tee "$out/train.log"
    "$py" -m dvclic export-weights "$run/last.pt" -o "$out/weights.pt" --storage int8 --json | tee "$out/export.json"
    for events in "$run"/tb/events.*; do [ -f "$events" ] && cp "$events" "$out/train.tfevents"; done
    rm -rf "$run"
    ;;
*)
    echo "usage: bash tools/gpu_window.sh prepare | train OUT [CONFIG] [INIT]" >&2
    exit 2
    ;;
esac
