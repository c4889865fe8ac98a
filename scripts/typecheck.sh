#!/usr/bin/env bash
# mypy over the four import packages (sllen, sllen.export, sllen.calib, sllen.runtime).
# pyproject maps the folders export/, calib/ and runtime/ into the sllen namespace
# (setuptools package-dir), which mypy cannot follow from the repo root: give it the installed
# layout as a tree of symbolic links in a temporary folder, and check that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/sllen"
for entry in sllen/*; do
  ln -s "$root/$entry" "$tree/sllen/$(basename "$entry")"
done
for sub in export calib runtime; do
  ln -s "$root/$sub" "$tree/sllen/$sub"
done
cd "$tree"
python -m mypy --config-file "$root/pyproject.toml" -p sllen "$@"
