/* oneDNN convolution forward for kernels.c (see dnnl-conv.c). */
#pragma once

/*
 * y = act(conv(x, w) [+ bias] [+ residual]) with dims n h w ci oh ow co kh kw sh sw padTop padLeft (NHWC, HWIO).
 * wkey > 0 names weights that do not change between calls with that key (their reordered copy is reused); 0 reorders
 * every call. Returns 1 when done, 0 when oneDNN cannot run it (the caller falls back).
 */
int dnnl_conv_forward(const long d[13], const float *x, const float *w, const float *bias, const float *residual,
                      float *y, int relu, double wkey);
