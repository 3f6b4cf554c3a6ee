// Optional backends, installed only in the images that use them (docker/trainer-gpu) or bundled for GPU checks.
declare module '@tensorflow/tfjs-backend-webgpu';
