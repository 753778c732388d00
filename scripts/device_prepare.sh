#!/usr/bin/env bash
# Run here (a machine with pip and apt), once, before scripts/device_model.sh runs on a lent GPU machine.
# That machine is bare and offline; its Python already has JAX (CUDA), flax, optax, orbax, numpy, scipy,
# pillow, imageio, tqdm, networkx and matplotlib (/work/.library/device/KINDS.md). This fetches what worldgen
# needs beyond them as x86-64 wheels into .whl/, and the EGL libraries into .gl/ (both git-ignored; about
# 16 MB together, far under the 64 MiB a call may carry).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl .gl /tmp/amd64/partial
wheels=(trimesh pyrender2 PyOpenGL freetype-py pyglet gymnasium farama-notifications)
for name in "${wheels[@]}"; do
  version=$(python3 -m pip show "$name" | sed -n 's/^Version: //p')
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$name==${version:?$name is not installed here: pip install -e . first}"
done
python3 -m pip wheel -q --no-deps -w .whl .  # worldgen itself, bundled model included
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .whl .gl
