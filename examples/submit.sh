#!/usr/bin/env bash
# Fine-tune on an ImageFolder with nothing but curl, jq and sha256sum: upload the folder through presigned URLs
# (only files the server does not already hold), submit, follow the epochs, download the model.
#
#   GPULAB_URL=http://127.0.0.1:8080 GPULAB_TOKEN=gpl_… examples/submit.sh DIR [NAME]
#   optional: EPOCHS (default 3), IMAGE_SIZE (224), FREEZE (head|full), MAX_HOURS (1), OUT (./model-<job id>)
set -euo pipefail
dir=${1:?usage: submit.sh DIR [NAME]}
name=${2:-$(basename "$dir")}
api=${GPULAB_URL:?set GPULAB_URL}
auth=(-H "Authorization: Bearer ${GPULAB_TOKEN:?set GPULAB_TOKEN}" -H 'content-type: application/json')

# 1. the manifest: every image's path, size and SHA-256
manifest=$(cd "$dir" && find train val -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) \
  -printf '%s %p\n' | sort -k2 | while read -r size path; do
    printf '{"path":"%s","size":%s,"sha256":"%s"}\n' "$path" "$size" "$(sha256sum "$path" | cut -d' ' -f1)"
  done | jq -s --arg name "$name" '{name: $name, files: .}')

# 2. an upload session: presigned PUT URLs for the files the server lacks
session=$(curl -sf -X POST "$api/v1/datasets/uploads" "${auth[@]}" -d "$manifest")
id=$(jq -r .id <<<"$session")
echo "upload $id: $(jq -r '.pending.files' <<<"$session") of $(jq -r .files <<<"$session") files to send"
jq -c '.missing[]' <<<"$session" | while read -r blob; do
  [ "$(jq -r .method <<<"$blob")" = PUT ] || { echo "a file over the single-PUT size: use the gpulab CLI" >&2; exit 1; }
  path=$(jq -r '.paths[0]' <<<"$blob")
  curl -sf -X PUT -T "$dir/$path" "$(jq -r .url <<<"$blob")" >/dev/null
done
dataset=$(curl -sf -X POST "$api/v1/datasets/uploads/$id/complete" "${auth[@]}" -d '{}' | jq -r .dataset.id)

# 3. the job
job=$(curl -sf -X POST "$api/v1/jobs" "${auth[@]}" -H "Idempotency-Key: submit-sh-$id" -d "$(jq -n \
  --arg d "$dataset" --argjson e "${EPOCHS:-3}" --argjson s "${IMAGE_SIZE:-224}" --arg f "${FREEZE:-head}" \
  --argjson h "${MAX_HOURS:-1}" \
  '{name: "submit.sh", dataset: {id: $d}, epochs: $e, imageSize: $s, freeze: {mode: $f}, resources: {maxHours: $h}}')" | jq -r .id)
echo "job $job submitted"

# 4. follow it: one line per epoch, until it ends
shown=0
while :; do
  view=$(curl -sf "$api/v1/jobs/$job" "${auth[@]}")
  jq -r --argjson n "$shown" '.metrics[$n:][] |
    "Epoch \(.epoch)/\(.epochs) | Train Loss: \(.trainLoss*10000|round/10000) | Val Loss: \(.valLoss*10000|round/10000) | Val Acc: \(.valAcc*10000|round/100)%"' <<<"$view"
  shown=$(jq '.metrics | length' <<<"$view")
  status=$(jq -r .status <<<"$view")
  case $status in SUCCEEDED | FAILED | CANCELLED | TIMED_OUT | BUDGET_EXHAUSTED) break ;; esac
  sleep 2
done
echo "job $job $status — $(jq -r '.statusMessage // ""' <<<"$view"); cost $(jq -r .cost.amount <<<"$view")"
[ "$status" = SUCCEEDED ] || exit 1

# 5. the model, straight from S3 through presigned URLs
out=${OUT:-./model-$job}
curl -sf "$api/v1/jobs/$job/artifacts" "${auth[@]}" | jq -r '.model[] | "\(.path) \(.url)"' | while read -r path url; do
  mkdir -p "$out/$(dirname "$path")"
  curl -sf -o "$out/$path" "$url"
done
echo "model in $out"
