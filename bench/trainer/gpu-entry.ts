// Entry point of the GPU bundle (bench/trainer/gpu-bundle.sh). The trainer's webgpu initialisation imports the TF.js
// webgpu backend with a literal import(), so esbuild bundles it against the same TF.js core.
import './backend-check';
