#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels bench/gpu.sh installs on the GPU
# machine, which reaches nothing: pyproject.toml's dependencies but torch and numpy (the
# device image's own) for its Python (default 3.12, the image's), x86-64 Linux, binary
# only, into .gpu-wheels/ (git-ignored; about 40 MB, carried with the working tree), with
# the list as .gpu-wheels/requirements.txt; and the stdlib token dataset bench/codec.py trains
# its real pseudo-gradient on, as .gpu-wheels/stdlib (4 MB; preparing it costs the device
# about 40 s of single-threaded tokenising otherwise).
#
#     bash bench/gpu_wheels.sh [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
pip=${PIP:-.venv/bin/pip}
python=${PYTHON:-.venv/bin/python}
rm -rf .gpu-wheels
mkdir .gpu-wheels
"$python" - > .gpu-wheels/requirements.txt <<'PY'
import tomllib
from packaging.requirements import Requirement

for line in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if Requirement(line).name not in ("torch", "numpy"):
        print(line)
PY
"$pip" download --quiet --dest .gpu-wheels --only-binary=:all: --python-version "$version" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 \
    -r .gpu-wheels/requirements.txt
if ls .gpu-wheels | grep -Eq '^(torch|numpy)-'; then
    echo "gpu_wheels: torch or numpy was pulled in; the device image's own must be used" >&2
    exit 1
fi
"$python" -c 'from pathlib import Path
from gauntlet.data import ensure_dataset
ensure_dataset(Path(".gpu-wheels/stdlib"), page_tokens=4096, max_tokens=4_000_000)'
echo "gpu_wheels: $(ls .gpu-wheels/*.whl | wc -l) wheels and the stdlib dataset, $(du -sh .gpu-wheels | cut -f1), Python $version" >&2
