#!/usr/bin/env bash
# Checks the Helm chart charts/roomhook without a cluster:
#   1. helm lint --strict and helm template over the default values and every examples/*.yaml;
#   2. every rendered document decoded strictly into the Kubernetes API types (KEDA's and
#      prometheus-operator's for the CRDs) and checked for consistency by .ci/chartcheck;
#   3. every ROOMHOOK_* variable of internal/server/config.go set in the rendered default Deployment;
#   4. every file in .ci/chartcheck/bad-values/ refused, with the message its "# expect:" line names;
#   5. with KEDA enabled, one trigger per partition on the partition stream and its consumers.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/charts/roomhook"
# helm template defaults to Kubernetes v1.20 when helm is built from source; render for the
# oldest version the chart supports and a current one.
kube_versions=(1.27.0 1.33.0)
# The minimum a release needs: NATS is required in a cluster, and so are the signing keys.
required=(--set config.natsUrl=nats://nats.nats.svc:4222 --set secrets.apiKey=ci-key --set secrets.apiSecret=ci-secret)

export PATH="$PATH:$(go env GOPATH)/bin"
if [[ -n "$(go env GOBIN)" ]]; then PATH="$PATH:$(go env GOBIN)"; fi
if ! command -v helm >/dev/null; then
  echo "chart-check: installing helm v3.22.0 (takes a couple of minutes)"
  go install helm.sh/helm/v3/cmd/helm@v3.22.0
fi
helm version --short

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "chart-check: building chartcheck"
(cd "$root/.ci/chartcheck" && go vet ./... && go test ./... && go build -o "$work/chartcheck" .)

passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# render NAME ARGS... : lint, then template for each Kubernetes version, then check strictly.
render() {
  local name="$1"; shift
  if helm lint --strict "$chart" "$@" >"$work/lint.out" 2>&1; then
    pass "helm lint $name"
  else
    cat "$work/lint.out"; fail "helm lint $name"
  fi
  local kv out
  for kv in "${kube_versions[@]}"; do
    out="$work/${name//\//_}-$kv.yaml"
    if ! helm template roomhook "$chart" --namespace roomhook --kube-version "$kv" "$@" >"$out" 2>"$work/template.err"; then
      cat "$work/template.err"; fail "helm template $name (Kubernetes $kv)"
      continue
    fi
    if "$work/chartcheck" -config "$root/internal/server/config.go" "$out"; then
      pass "strict decode and checks $name (Kubernetes $kv)"
    else
      fail "strict decode and checks $name (Kubernetes $kv)"
    fi
  done
}

render default "${required[@]}"
for f in "$chart"/examples/*.yaml; do
  render "examples/$(basename "$f")" -f "$f"
done

# KEDA: one nats-jetstream trigger per partition, on roomhook's partition stream and each
# partition's durable consumer (subscriber.Names.PartStream, PartConsumer), written out here
# rather than derived, so that the chart and .ci/chartcheck cannot drift together. The v1 key
# keda.consumer (the router, deleted by the upgrade) is still accepted, and ignored.
keda=(--set keda.enabled=true --set keda.natsServerMonitoringEndpoint=nats.nats.svc:8222
  --set config.region=eu-west-2 --set config.partitions=3 --set keda.consumer=roomhook_router)
render keda-partitions "${required[@]}" "${keda[@]}"
if helm template roomhook "$chart" --namespace roomhook --kube-version "${kube_versions[-1]}" "${required[@]}" "${keda[@]}" \
  --show-only templates/scaledobject.yaml >"$work/keda.yaml" 2>"$work/keda.err"; then
  got="$(sed -n 's/^ *\(stream\|consumer\): "\(.*\)"$/\1=\2/p' "$work/keda.yaml" | paste -sd' ')"
  want="stream=ROOMHOOK_PART_EU_WEST_2 consumer=part_0 stream=ROOMHOOK_PART_EU_WEST_2 consumer=part_1 stream=ROOMHOOK_PART_EU_WEST_2 consumer=part_2"
  if [[ "$got" == "$want" ]]; then
    pass "KEDA: one trigger per partition (3) on ROOMHOOK_PART_EU_WEST_2, consumers part_0..part_2"
  else
    cat "$work/keda.yaml"; fail "KEDA triggers: got '$got', want '$want'"
  fi
  if grep -q roomhook_router "$work/keda.yaml"; then
    fail "KEDA: the ScaledObject still names the v1 router consumer"
  fi
else
  cat "$work/keda.err"; fail "helm template with keda enabled"
fi

# maxConns set alone below the default per-host bound takes that bound down with it, as
# ROOMHOOK_MAX_CONNS does without the chart: otherwise the pod would refuse to start.
if helm template roomhook "$chart" --namespace roomhook --kube-version "${kube_versions[-1]}" "${required[@]}" \
  --set config.maxConns=100 --show-only templates/deployment.yaml >"$work/conns.yaml" 2>"$work/conns.err"; then
  got="$(grep -A1 -- '- name: ROOMHOOK_MAX_CONNS_PER_HOST$' "$work/conns.yaml" | sed -n 's/^ *value: "\(.*\)"$/\1/p')"
  if [[ "$got" == "100" ]]; then
    pass "maxConns 100 alone lowers ROOMHOOK_MAX_CONNS_PER_HOST to 100"
  else
    fail "maxConns 100 alone: ROOMHOOK_MAX_CONNS_PER_HOST is '$got', want 100"
  fi
else
  cat "$work/conns.err"; fail "helm template with config.maxConns=100"
fi

# Every setting of internal/server/config.go must be mapped by the chart: grep the envconfig tags and look for
# each variable in the default Deployment. This keeps the Config struct, the chart and the README's
# table in step.
default_out="$work/default-${kube_versions[-1]}.yaml"
mapfile -t vars < <(grep -o 'envconfig:"[A-Z0-9_]*"' "$root/internal/server/config.go" | sed 's/envconfig:"\(.*\)"/ROOMHOOK_\1/' | sort -u)
if [[ ${#vars[@]} -eq 0 ]]; then
  fail "no envconfig tags found in internal/server/config.go"
fi
missing=()
for v in "${vars[@]}"; do
  grep -q -- "- name: $v\$" "$default_out" || missing+=("$v")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  pass "all ${#vars[@]} ROOMHOOK_* settings of internal/server/config.go are in the default Deployment"
else
  fail "settings of internal/server/config.go missing from the default Deployment: ${missing[*]}"
fi

# Values the chart must refuse. Each file names, on a "# expect:" line, a piece of the error it
# must fail with, so that it fails for its own reason and not for an unrelated one, and on a
# "# rejected-by:" line what refuses it: "schema" (values.schema.json, which helm lint applies
# too) or "template" (a fail in _helpers.tpl; helm lint renders with fail turned off).
for f in "$root"/.ci/chartcheck/bad-values/*.yaml; do
  name="bad-values/$(basename "$f")"
  expect="$(sed -n 's/^# expect: //p' "$f" | head -n1)"
  if [[ -z "$expect" ]]; then
    fail "$name has no '# expect:' line"
    continue
  fi
  if helm template roomhook "$chart" --kube-version "${kube_versions[-1]}" -f "$f" >/dev/null 2>"$work/bad.err"; then
    fail "$name was accepted by helm template"
  elif grep -qF -- "$expect" "$work/bad.err"; then
    pass "$name refused: $expect"
  else
    cat "$work/bad.err"; fail "$name refused, but not with '$expect'"
  fi
  case "$(sed -n 's/^# rejected-by: //p' "$f" | head -n1)" in
    schema)
      if helm lint "$chart" -f "$f" >/dev/null 2>&1; then
        fail "$name passed helm lint"
      else
        pass "$name fails helm lint"
      fi ;;
    template) ;;
    *) fail "$name has no '# rejected-by: schema|template' line" ;;
  esac
done

echo "chart-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
