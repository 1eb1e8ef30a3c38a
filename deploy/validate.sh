#!/usr/bin/env bash
# Checks everything in deploy/ that can be checked without a running systemd or cluster. CI runs it from
# Tests/run.sh; it exits non-zero on the first failure and prints what it measured.
#
#   1. systemd-analyze verify on both units (any warning fails: verify exits 0 on unknown keys and bad values)
#   2. the hardening the issue asks for is present in the service; the env file documents every setting
#   3. systemd-analyze security --offline: exposure score at most SECURITY_THRESHOLD (2.0, "OK")
#   4. Kubernetes manifests against the API schemas (kubernetes-validate, strict) for the oldest supported
#      version (1.30: preStop sleep) and the newest bundled one, and kustomization.yaml lists every manifest;
#      the HPA's metric is the one the prometheus-adapter rule serves
#   5. nginx -t on the upstream example
#   6. the container image agrees with the Kubernetes Deployment (tag, user, port, bundle), and every Debian
#      library the built binary links is in deploy/container/runtime-packages.txt
#
# Python tools go in .venv-deploy (gitignored, reused across runs). nginx: the system one if installed,
# else the Debian package unpacked into .venv-deploy (nothing installed, no service started).
set -euo pipefail
cd "$(dirname "$0")/.."

SECURITY_THRESHOLD=2.0
KUBERNETES_VERSIONS=(1.30 1.37)
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
venv=.venv-deploy

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "validate: FAIL: $*" >&2; exit 1; }
step() { echo "validate: $*"; }

# --- systemd -------------------------------------------------------------------------------------------
# verify needs ExecStart to exist and the EnvironmentFile to be readable; point both at real files in a
# scratch copy (the built binary when there is one). Nothing else is changed.
binary="$(pwd)/.build/release/avmae-serve"
[ -x "$binary" ] || binary=/bin/true
sed -e "s|^ExecStart=/usr/local/bin/avmae-serve|ExecStart=$binary|" \
    -e "s|^EnvironmentFile=.*|EnvironmentFile=$(pwd)/deploy/avmae-serve.env|" \
    deploy/avmae-serve.service > "$work/avmae-serve.service"
cp deploy/avmae-serve.socket "$work/avmae-serve.socket"

verify() { systemd-analyze verify --man=no "$@" 2>&1 || echo "(exit status $?)"; }
output="$(verify "$work/avmae-serve.service" "$work/avmae-serve.socket")"
[ -z "$output" ] || fail "systemd-analyze verify:"$'\n'"$output"
# The check above is only as good as verify's eye for mistakes on this systemd version: prove it sees one.
{ cat "$work/avmae-serve.service"; printf '[Service]\nProtectSystem=strictt\n'; } > "$work/broken.service"
[ -n "$(verify "$work/broken.service")" ] || fail "systemd-analyze verify did not flag a misspelt value"
step "systemd-analyze verify: avmae-serve.service, avmae-serve.socket clean ($(systemd-analyze --version | head -1))"

required=(Type=notify ExecReload= WatchdogSec= KillMode=mixed DynamicUser=yes ProtectSystem=strict ProtectHome=yes
          PrivateTmp=yes NoNewPrivileges=yes "CapabilityBoundingSet=$" RestrictAddressFamilies=
          SystemCallFilter=@system-service MemoryMax= LimitNOFILE= StateDirectory=avmae-serve EnvironmentFile=)
for setting in "${required[@]}"; do
  grep -q "^$setting" deploy/avmae-serve.service || fail "avmae-serve.service lacks $setting"
done
step "hardening present: ${#required[@]} required settings"

# The env file documents every setting the daemon knows (the keys of ServerConfig.fields), so new settings
# cannot be added without a line here.
keys=($(grep -o 'field("[a-z_]*"' Sources/HTTPServer/ServerConfig.swift | sed 's/field("//; s/"//'))
[ ${#keys[@]} -gt 0 ] || fail "no settings found in Sources/HTTPServer/ServerConfig.swift"
for key in "${keys[@]}"; do
  grep -Eq "^#?AVMAE_${key^^}=" deploy/avmae-serve.env || fail "deploy/avmae-serve.env does not document AVMAE_${key^^}"
done
step "avmae-serve.env documents all ${#keys[@]} settings"

# --threshold counts in tenths (20 = 2.0).
threshold_tenths="$(awk -v t="$SECURITY_THRESHOLD" 'BEGIN { printf "%d", t * 10 }')"
if ! report="$(systemd-analyze security --offline=yes --threshold="$threshold_tenths" "$work/avmae-serve.service" 2>&1)"; then
  echo "$report" | grep '✗' >&2 || true
  fail "$(echo "$report" | tail -1) is above the threshold $SECURITY_THRESHOLD"
fi
step "systemd-analyze security: $(echo "$report" | grep 'Overall exposure level' | sed 's/.*: //') (threshold $SECURITY_THRESHOLD)"
# The same with the int8/bf16 drop-in (MemoryDenyWriteExecute=no for oneDNN's run-time kernels) applied.
cat "$work/avmae-serve.service" deploy/low-precision.conf > "$work/avmae-serve-low-precision.service"
if ! report="$(systemd-analyze security --offline=yes --threshold="$threshold_tenths" "$work/avmae-serve-low-precision.service" 2>&1)"; then
  fail "with deploy/low-precision.conf: $(echo "$report" | tail -1) is above the threshold $SECURITY_THRESHOLD"
fi
step "systemd-analyze security with low-precision.conf: $(echo "$report" | grep 'Overall exposure level' | sed 's/.*: //')"

# --- Kubernetes ----------------------------------------------------------------------------------------
if ! "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
  start=$SECONDS
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE"
  step "installed $KUBERNETES_VALIDATE into $venv in $((SECONDS - start)) s"
fi
manifests=(deploy/k8s/deployment.yaml deploy/k8s/service.yaml deploy/k8s/hpa.yaml deploy/k8s/bulk-job.yaml)
for version in "${KUBERNETES_VERSIONS[@]}"; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}" \
    || fail "Kubernetes $version schema rejects a manifest"
done
# The bulk Job is applied on its own (a serving deployment must not start a batch run), so it is the one
# manifest kustomization.yaml leaves out.
listed="$(sed -n 's/^  - //p' deploy/k8s/kustomization.yaml | sort)"
present="$(cd deploy/k8s && ls *.yaml | grep -vx -e kustomization.yaml -e bulk-job.yaml | sort)"
[ "$listed" = "$present" ] || fail "kustomization.yaml resources ($listed) differ from the manifests ($present)"
# The Job's N appears twice (completions and --shard=I/N); a mismatch would skip or repeat part of the dataset.
completions="$(sed -n 's/^  completions: //p' deploy/k8s/bulk-job.yaml)"
shards="$(sed -n 's|.*--shard=$(SHARD)/\([0-9]*\)$|\1|p' deploy/k8s/bulk-job.yaml)"
[ -n "$completions" ] && [ "$completions" = "$shards" ] \
  || fail "bulk-job.yaml: completions ($completions) and --shard=\$(SHARD)/N ($shards) must be the same N"
step "Kubernetes schemas ${KUBERNETES_VERSIONS[*]} (strict): ${manifests[*]##*/} valid; kustomization lists all but bulk-job.yaml; bulk N=$completions"
# The HPA scales on a per-pod custom metric that only prometheus-adapter's rule creates: the rule must name
# exactly that metric, and the pods must be scraped.
"$venv/bin/python" - deploy/k8s/hpa.yaml deploy/k8s/prometheus-adapter/values.yaml deploy/k8s/deployment.yaml <<'PY' \
  || fail "hpa.yaml, prometheus-adapter/values.yaml and deployment.yaml disagree on the scaling metric"
import sys, yaml
hpa, values, deployment = (yaml.safe_load(open(path)) for path in sys.argv[1:])
wanted = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
served = {rule["name"]["as"] for rule in values["rules"]["custom"] if rule["seriesQuery"].startswith(rule["name"]["as"] + "{")}
assert wanted and wanted <= served, (wanted, served)
annotations = deployment["spec"]["template"]["metadata"]["annotations"]
assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics", annotations
print(f"validate: HPA metric {sorted(wanted)} served by the prometheus-adapter rule; pods annotated for scraping")
PY

# --- nginx ---------------------------------------------------------------------------------------------
nginx="$(command -v nginx || true)"
if [ -z "$nginx" ]; then
  nginx="$venv/nginx/usr/sbin/nginx"
  if [ ! -x "$nginx" ]; then
    mkdir -p "$venv/nginx"
    (cd "$work" && { apt-get download nginx nginx-common >/dev/null 2>&1 \
                     || { apt-get update -qq && apt-get download nginx nginx-common >/dev/null; }; })
    for deb in "$work"/nginx*.deb; do dpkg-deb -x "$deb" "$venv/nginx"; done
  fi
fi
# A minimal main config around the example, with every path inside the scratch folder.
cat > "$work/nginx.conf" <<EOF
error_log stderr;
pid $work/nginx.pid;
events {}
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $(pwd)/deploy/nginx/avmae-serve.conf;
}
EOF
"$nginx" -t -q -p "$work" -c "$work/nginx.conf" -e stderr || fail "nginx -t rejects deploy/nginx/avmae-serve.conf"
grep -q "client_max_body_size 64m;" deploy/nginx/avmae-serve.conf \
  || fail "nginx client_max_body_size must equal the daemon's max_body_bytes default (64 MiB)"
step "nginx -t: deploy/nginx/avmae-serve.conf ok ($("$nginx" -v 2>&1))"

# --- container image -----------------------------------------------------------------------------------
containerfile=deploy/container/Containerfile
deployment=deploy/k8s/deployment.yaml
image="$(sed -n 's/^ *image: //p' "$deployment")"
grep -q -- "-t $image " "$containerfile" || fail "$containerfile does not build $image, the image $deployment runs"
user="$(sed -n 's/^USER //p' "$containerfile")"
[ "$user" = "$(sed -n 's/^ *runAsUser: //p' "$deployment"):$(sed -n 's/^ *runAsGroup: //p' "$deployment")" ] \
  || fail "$containerfile USER $user differs from the Deployment's runAsUser:runAsGroup"
grep -q "^EXPOSE $(sed -n 's/^ *containerPort: //p' "$deployment")$" "$containerfile" \
  || fail "$containerfile EXPOSE differs from the Deployment's containerPort"
bundle="$(grep -A1 'name: AVMAE_BUNDLE' "$deployment" | sed -n 's/^ *value: //p')"
grep -q "^ENV AVMAE_BUNDLE=$bundle$" "$containerfile" || fail "$containerfile's AVMAE_BUNDLE is not the Deployment's $bundle"
# The libraries the binary links, as this machine resolves them: each Debian one must come from a listed
# package (the Swift runtime is linked in by the image's --static-swift-stdlib build, or comes from the
# toolchain in a plain build; libc6 and libgcc-s1 are in every Debian image).
if [ -x "$binary" ] && [ "$binary" != /bin/true ]; then
  listed_packages=" $(sed 's/#.*//' deploy/container/runtime-packages.txt | xargs) libc6 libgcc-s1 "
  for library in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path="$(ldd "$binary" | awk -v l="$library" '$1 == l {print $3}')"
    [[ "$library" != ld-linux* ]] || continue  # the dynamic loader, libc6's
    [ -n "$path" ] || fail "$library, linked by the binary, is not installed"
    real="$(readlink -f "$path")"
    # dpkg knows a file by the path its package ships (/lib or /usr/lib: merged /usr makes both the same).
    package="$({ dpkg -S "$real" 2>/dev/null || dpkg -S "${real/#\/usr\/lib\//\/lib\/}" 2>/dev/null; } | cut -d: -f1 | head -1 || true)"
    if [ -z "$package" ]; then
      [[ "$real" != /usr/lib/* ]] || fail "$library ($real), linked by the binary, belongs to no Debian package"
      continue  # the Swift toolchain's runtime, in a build without --static-swift-stdlib
    fi
    [[ "$listed_packages" == *" $package "* ]] \
      || fail "$library (package $package) is linked by the binary but missing from deploy/container/runtime-packages.txt"
  done
  step "container: $image agrees with the Deployment; runtime-packages.txt covers every Debian library the binary links"
else
  step "container: $image agrees with the Deployment (no built binary: library coverage not checked)"
fi

echo "validate: all deploy checks passed"
