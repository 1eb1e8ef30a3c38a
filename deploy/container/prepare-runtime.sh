#!/bin/sh
# The runtime stage's one setup step, run as root inside a Debian 12 (slim) root file system: installs the
# packages of runtime-packages.txt (next to this script) and adds the unprivileged user the daemon runs as.
# The Containerfile runs it on debian:12-slim; bench/rootfs/ runs it on a root file system built from
# Debian's packages, which proves the list complete without pulling any image.
set -eu
list="$(dirname "$0")/runtime-packages.txt"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046 # one package per word
apt-get install -y -qq --no-install-recommends $(sed 's/#.*//' "$list")
apt-get clean
rm -rf /var/lib/apt/lists/*
# uid/gid 65532 (above the system range, like distroless "nonroot"): the Kubernetes Deployment's
# runAsUser/runAsGroup (deploy/k8s/deployment.yaml).
groupadd --gid 65532 avmae
useradd --uid 65532 --gid avmae --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin avmae
