/*
 * Convolution forward on oneDNN (the library PyTorch's CPU convolutions run on), used by kernels.c when the build
 * found it (-DGPULAB_DNNL). oneDNN's fast direct kernels (brgconv/jit on AVX2/AVX-512) want the weights in a blocked
 * layout of their choosing: each call reorders the HWIO weights into it — except when the caller passes a weight key
 * (eval mode: folded weights that stay the same across calls), whose reordered copy is kept with the primitive.
 *
 * Primitives are cached by geometry (+ weight key) with LRU eviction; creating one costs about a millisecond.
 * A geometry oneDNN rejects is remembered and reported as unsupported, so the caller falls back to im2col + BLAS;
 * with GPULAB_DNNL_DEBUG set in the environment each rejection is printed on stderr (to see which layers fall back).
 */
#include "dnnl-conv.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 128
/* Reordered weights kept for keyed (eval) entries, at most: LRU entries beyond it are dropped. */
#define KEPT_WEIGHT_BYTES (192L * 1024 * 1024)

typedef struct {
  long geo[15]; /* n h w ci oh ow co kh kw sh sw pt pl bias residual */
  int relu;
  double wkey;   /* part of the lookup key; 0: weights reordered on every call */
  double loaded; /* the key of the weights now in `wei` (0: none) */
  int ok;      /* 0: oneDNN rejected this geometry */
  unsigned long used;
  size_t bytes; /* of `wei` */
  dnnl_primitive_t prim, reorder;
  dnnl_memory_t src, wuser, wei, bias, dst;
} Entry;

static Entry cache[CACHE_SIZE];
static int cached = 0;
static size_t kept_bytes = 0; /* sum of `bytes` over keyed entries */
static unsigned long tick = 0;
static dnnl_engine_t engine = NULL;
static dnnl_stream_t stream = NULL;
static int broken = 0;

static void destroy(Entry *e) {
  if (e->wkey != 0) kept_bytes -= e->bytes;
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->reorder) dnnl_primitive_destroy(e->reorder);
  dnnl_memory_t *ms[5] = {&e->src, &e->wuser, &e->wei, &e->bias, &e->dst};
  for (int i = 0; i < 5; i++)
    if (*ms[i]) dnnl_memory_destroy(*ms[i]);
  memset(e, 0, sizeof *e);
}

/* Builds the primitive for `e`'s geometry; e->ok = 0 when oneDNN has none. */
static void build(Entry *e) {
  const long *g = e->geo;
  const long n = g[0], h = g[1], w = g[2], ci = g[3], oh = g[4], ow = g[5], co = g[6], kh = g[7], kw = g[8];
  const long sh = g[9], sw = g[10], pt = g[11], pl = g[12];
  const int has_bias = (int)g[13], has_res = (int)g[14];
  dnnl_memory_desc_t src, wuser, wany, bias, dst;
  dnnl_dims_t sd = {n, ci, h, w}, wd = {co, ci, kh, kw}, bd = {co}, dd = {n, co, oh, ow};
  dnnl_dims_t strides = {sh, sw}, padl = {pt, pl};
  dnnl_dims_t padr = {(oh - 1) * sh + kh - h - pt, (ow - 1) * sw + kw - w - pl};
  dnnl_convolution_desc_t cd;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL, rpd = NULL;
  e->ok = 0;
  if (dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nhwc) ||
      dnnl_memory_desc_init_by_tag(&wuser, 4, wd, dnnl_f32, dnnl_hwio) ||
      dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any) ||
      dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x) ||
      dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc))
    return;
  if (dnnl_convolution_forward_desc_init(&cd, e->wkey != 0 ? dnnl_forward_inference : dnnl_forward_training,
                                         dnnl_convolution_direct, &src, &wany, has_bias ? &bias : NULL, &dst, strides,
                                         padl, padr))
    return;
  if (dnnl_post_ops_create(&po) || dnnl_primitive_attr_create(&attr)) goto done;
  if (has_res && dnnl_post_ops_append_sum(po, 1.f)) goto done;
  if (e->relu && dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.f, 0.f)) goto done;
  if (dnnl_primitive_attr_set_post_ops(attr, po)) goto done;
  if (dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL)) goto done;
  const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  if (dnnl_primitive_create(&e->prim, pd)) goto done;
  e->bytes = dnnl_memory_desc_get_size(wq);
  if (e->wkey != 0) kept_bytes += e->bytes;
  if (dnnl_memory_create(&e->src, &src, engine, DNNL_MEMORY_NONE) ||
      dnnl_memory_create(&e->wuser, &wuser, engine, DNNL_MEMORY_NONE) ||
      dnnl_memory_create(&e->wei, wq, engine, DNNL_MEMORY_ALLOCATE) ||
      dnnl_memory_create(&e->bias, &bias, engine, DNNL_MEMORY_NONE) ||
      dnnl_memory_create(&e->dst, &dst, engine, DNNL_MEMORY_NONE))
    goto done;
  if (dnnl_reorder_primitive_desc_create(&rpd, &wuser, engine, wq, engine, NULL) ||
      dnnl_primitive_create(&e->reorder, rpd))
    goto done;
  e->ok = 1;
done:
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (po) dnnl_post_ops_destroy(po);
  if (!e->ok && getenv("GPULAB_DNNL_DEBUG")) {
    fprintf(stderr, "oneDNN rejected conv n%ld h%ld w%ld ci%ld oh%ld ow%ld co%ld k%ldx%ld s%ld p%ld,%ld\n", g[0], g[1],
            g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[11], g[12]);
  }
  if (!e->ok) {
    /* Keep the key (so the rejection is remembered) but none of the half-built objects. */
    long geo[15];
    memcpy(geo, e->geo, sizeof geo);
    const int relu = e->relu;
    const double wkey = e->wkey;
    destroy(e);
    memcpy(e->geo, geo, sizeof geo);
    e->relu = relu;
    e->wkey = wkey;
  }
}

static Entry *lookup(const long geo[15], int relu, double wkey) {
  Entry *lru = NULL;
  for (int i = 0; i < cached; i++) {
    Entry *e = &cache[i];
    if (e->relu == relu && e->wkey == wkey && memcmp(e->geo, geo, sizeof e->geo) == 0) return e;
    if (!lru || e->used < lru->used) lru = e;
  }
  Entry *e = cached < CACHE_SIZE ? &cache[cached++] : lru;
  destroy(e);
  memcpy(e->geo, geo, sizeof e->geo);
  e->relu = relu;
  e->wkey = wkey;
  build(e);
  /* Keyed entries past the budget go, least recently used first (never the one just built). */
  e->used = ++tick;
  while (kept_bytes > KEPT_WEIGHT_BYTES) {
    Entry *old = NULL;
    for (int i = 0; i < cached; i++)
      if (cache[i].wkey != 0 && &cache[i] != e && (!old || cache[i].used < old->used)) old = &cache[i];
    if (!old) break;
    destroy(old); /* leaves an empty slot (matches nothing: geometry zero) */
  }
  return e;
}

int dnnl_conv_forward(const long d[13], const float *x, const float *w, const float *bias, const float *residual,
                      float *y, int relu, double wkey) {
  if (broken) return 0;
  if (!engine) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) || dnnl_stream_create(&stream, engine, dnnl_stream_default_flags)) {
      broken = 1;
      return 0;
    }
  }
  const long geo[15] = {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12],
                        bias != NULL, residual != NULL};
  Entry *e = lookup(geo, relu, wkey);
  e->used = ++tick;
  if (!e->ok) return 0;
  const long ysize = d[0] * d[4] * d[5] * d[6];
  if (residual) memcpy(y, residual, sizeof(float) * ysize);
  dnnl_memory_set_data_handle(e->src, (void *)x);
  dnnl_memory_set_data_handle(e->dst, y);
  if (bias) dnnl_memory_set_data_handle(e->bias, (void *)bias);
  if (wkey == 0 || e->loaded != wkey) {
    dnnl_memory_set_data_handle(e->wuser, (void *)w);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->wuser}, {DNNL_ARG_TO, e->wei}};
    if (dnnl_primitive_execute(e->reorder, stream, 2, ra)) return 0;
    e->loaded = wkey;
  }
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst},
                             {DNNL_ARG_BIAS, e->bias}};
  if (dnnl_primitive_execute(e->prim, stream, bias ? 4 : 3, args)) return 0;
  dnnl_stream_wait(stream);
  return 1;
}
