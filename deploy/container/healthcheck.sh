#!/bin/bash
# The image's HEALTHCHECK (Docker; Kubernetes uses deploy/k8s's probes): healthy when GET /healthz on the
# daemon's port answers 200. Bash's /dev/tcp makes the request, so the runtime image needs no curl.
# Plain HTTP on loopback: with AVMAE_TLS_CERT set, override the health check (or probe from outside).
set -eu
exec 3<>"/dev/tcp/127.0.0.1/${AVMAE_PORT:-8080}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
