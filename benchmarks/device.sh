# The lent GPU machine: what to carry there, and how to install harness on it.
#
# That machine has CUDA PyTorch, JAX, scikit-learn, h5py, rich and pytest-benchmark, but no
# network, no Keras, no TensorFlow and no MLflow. So:
#
#   bash benchmarks/device.sh prepare      # here, once: data and wheels into two ignored folders
#
# copies MNIST, Fashion-MNIST and COIL-20 (the table's data sets; name others to copy those
# instead: `prepare usps`) from ../shared/data into .devdata/ (about 58 MB of the 64 MiB a call
# carries) and downloads the wheels Keras needs there (keras, namex, optree for CPython 3.12) into
# .whl/. Both folders, and the device plan's .devplan/ and .devruns/, are listed in
# .git/info/exclude; .devdata, .whl and .devplan travel with a device call through its `carry`
# list (["./.devdata", "./.whl", "./.devplan"]). Then every call there starts with
#
#   source benchmarks/device.sh && <command>
#
# which installs harness and the plugins from the carried tree (no network, no build isolation),
# puts Keras on the path with the JAX backend (DEC's `auto` picks JAX where TensorFlow is absent)
# and points the data and test-data directories at .devdata. Record a sweep there with
# `harness run ... --offline "$OUT/runs"` (no MLflow on that path) and bring it into the store
# here with `harness import`.
#
# The paper table (issue 18) in chunks that each fit one call, resumed call after call:
#
#   source benchmarks/device.sh && python benchmarks/device_plan.py run --out "$OUT"   # there
#   python benchmarks/device_plan.py home <files_at>                                   # here
#
# (benchmarks/device_plan.py says how; benchmarks/README.md has the order and the budget.)

if [ "${1:-}" = prepare ]; then
    set -e
    shared=${SHARED_DATA:-../shared/data}
    mkdir -p .devdata .whl
    shift
    names=${*:-mnist fashion-mnist coil20}
    rm -rf .devdata && mkdir -p .devdata
    for name in $names; do
        if [ "$name" = coil20 ]; then  # the PNGs the loader checks, not the .mat beside them
            mkdir -p .devdata/coil20 && cp -r "$shared/coil20/coil-20-proc" .devdata/coil20/
        else
            cp -r "$shared/$name" .devdata/
        fi
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
    exclude=$(git rev-parse --git-common-dir)/info/exclude  # .git is a file in a worktree
    for ignored in /.devdata/ /.whl/ /.devplan/ /.devruns/; do
        grep -qx "$ignored" "$exclude" || echo "$ignored" >> "$exclude"
    done
    du -sh .devdata .whl
    exit 0
fi

export PYTHONUNBUFFERED=1 HARNESS_DATA_DIR=$PWD/.devdata HARNESS_TEST_DATA=$PWD/.devdata
export HARNESS_CACHE_DIR=/tmp/harness-cache KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/tmp/pip.log 2>&1 \
    || { tail -20 /tmp/pip.log; return 1 2>/dev/null || exit 1; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
python3 -m pip install -q --no-index --no-deps --no-build-isolation \
    -e . -e reports -e datasets -e plugins/kmeans -e plugins/dlfc -e plugins/dec >>/tmp/pip.log 2>&1 \
    || { tail -20 /tmp/pip.log; return 1 2>/dev/null || exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, jax, keras; print('torch', torch.__version__, '| jax', jax.__version__, jax.default_backend(), '| keras', keras.__version__)"
