#!/usr/bin/env bash
# `npm run quickstart`: install, make sure Postgres and Redis run, then the demo job end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/.prisma/client ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "gpulab quickstart: installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
bash scripts/ensure-services.sh
if [ ! -f apps/web/dist/index.html ] || [ -n "$(find apps/web/src apps/web/index.html -newer apps/web/dist/index.html -print -quit)" ]; then
  echo "gpulab quickstart: building the dashboard (apps/web)"
  npm run -s build:web >/dev/null
fi
if [ ! -f apps/trainer/native/build/gpulab_kernels.node ] || [ apps/trainer/native/kernels.c -nt apps/trainer/native/build/gpulab_kernels.node ]; then
  # Native CPU kernels make CPU training ~3x faster; without OpenBLAS the trainer runs on wasm alone.
  bash apps/trainer/native/build.sh --if-possible
fi
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec node --import tsx scripts/quickstart.ts "$@"
