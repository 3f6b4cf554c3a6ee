#!/usr/bin/env bash
# `npm test`: services up, then every jest project (unit + integration + end-to-end) on the real components.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
# The trainer's native CPU kernels (OpenBLAS); their tests require them (apt-get install libopenblas-dev).
bash apps/trainer/native/build.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx jest --ci "$@"
