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

required=(Type=notify ExecReload= WatchdogSec= DynamicUser=yes ProtectSystem=strict ProtectHome=yes
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
manifests=(deploy/k8s/deployment.yaml deploy/k8s/service.yaml deploy/k8s/hpa.yaml)
for version in "${KUBERNETES_VERSIONS[@]}"; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}" \
    || fail "Kubernetes $version schema rejects a manifest"
done
listed="$(sed -n 's/^  - //p' deploy/k8s/kustomization.yaml | sort)"
present="$(cd deploy/k8s && ls *.yaml | grep -vx kustomization.yaml | sort)"
[ "$listed" = "$present" ] || fail "kustomization.yaml resources ($listed) differ from the manifests ($present)"
step "Kubernetes schemas ${KUBERNETES_VERSIONS[*]} (strict): ${manifests[*]##*/} valid; kustomization lists them all"
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

echo "validate: all deploy checks passed"
