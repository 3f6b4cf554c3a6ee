/*
 * gpulab native CPU kernels: convolution (forward, filter gradient, input gradient) and fused train-mode batch norm
 * (+ optional ReLU), for the trainer's wasm backend on CPU nodes.
 *
 * The kernels read and write the wasm backend's heap directly (the JS side passes Float32Array views of it), so no
 * tensor is copied across. Convolutions are im2col + BLAS sgemm (OpenBLAS: runtime-dispatched AVX2/AVX-512 kernels,
 * threaded over the cores), in chunks of whole samples so the im2col buffer stays bounded; 1x1 stride-1 unpadded
 * convolutions use the activations as the matrix directly. Layouts: activations NHWC, filters HWIO — so the filter is
 * already the [KH*KW*Ci, Co] matrix and one im2col row is one output position.
 *
 * Built by apps/trainer/native/build.sh (plain gcc, no node-gyp). Every kernel is checked against the reference
 * kernels of TF.js's cpu backend on random shapes (apps/trainer/test/unit/native-kernels.test.ts).
 */
#define NAPI_VERSION 8
#include <cblas.h>
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef GPULAB_DNNL
#include "dnnl-conv.h"
#endif

/* Upper bound on the im2col buffer (floats): 8 Mi floats = 32 MiB by default (setChunkFloats changes it). */
static long chunk_floats = 8L * 1024 * 1024;

typedef struct {
  long n, h, w, ci, oh, ow, co, kh, kw, sh, sw, pt, pl;
} Conv;

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

/* Threads for large products (setThreads; 0 until set: OpenBLAS's own default) and the one in effect now. */
static int max_threads = 0, cur_threads = 0;
/*
 * Below this many flops a product runs on one thread: on small matrices (deep layers at small image sizes) waking and
 * joining BLAS threads costs more than it saves, and much more when another process holds the other cores.
 */
static double small_flops = 16e6;

/* Row-major sgemm that runs small products on one thread and large ones on max_threads. */
static void sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, long m, long n, long k, float alpha,
                  const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
  if (max_threads == 0) max_threads = cur_threads = openblas_get_num_threads();
  const int want = 2.0 * m * n * k < small_flops ? 1 : max_threads;
  if (want != cur_threads) {
    openblas_set_num_threads(want);
    cur_threads = want;
  }
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, "GPULAB_NATIVE", msg);
  return NULL;
}

/* A Float32Array argument: pointer and length; false (with a JS error thrown) when it is not one. */
static int f32(napi_env env, napi_value v, float **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, "GPULAB_NATIVE", "expected a Float32Array");
    return 0;
  }
  *data = (float *)ptr;
  return 1;
}

static int i32(napi_env env, napi_value v, int32_t **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, "GPULAB_NATIVE", "expected an Int32Array");
    return 0;
  }
  *data = (int32_t *)ptr;
  return 1;
}

/* dims: n h w ci oh ow co kh kw sh sw padTop padLeft. Checks the geometry is consistent. */
static int conv_dims(napi_env env, napi_value v, Conv *c) {
  int32_t *d;
  size_t len;
  if (!i32(env, v, &d, &len)) return 0;
  if (len != 13) {
    napi_throw_range_error(env, "GPULAB_NATIVE", "conv dims: expected 13 values");
    return 0;
  }
  for (size_t i = 0; i < len; i++)
    if (d[i] < 0 || (i < 11 && d[i] == 0)) {
      napi_throw_range_error(env, "GPULAB_NATIVE", "conv dims: sizes must be positive");
      return 0;
    }
  *c = (Conv){d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12]};
  if ((c->oh - 1) * c->sh - c->pt > c->h - 1 + c->kh || (c->ow - 1) * c->sw - c->pl > c->w - 1 + c->kw) {
    napi_throw_range_error(env, "GPULAB_NATIVE", "conv dims: output larger than the input allows");
    return 0;
  }
  return 1;
}

static int expect_len(napi_env env, size_t got, long want, const char *what) {
  if ((long)got != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %zu values, expected %ld", what, got, want);
    napi_throw_range_error(env, "GPULAB_NATIVE", msg);
    return 0;
  }
  return 1;
}

/* Whether convolutions go to oneDNN (when built with it); useOneDnn(false) forces the BLAS path (tests compare). */
static int use_dnnl = 1;

/* Convolution forward on oneDNN when the build has it; 0 when it cannot (the caller falls back to im2col + BLAS). */
static int dnnl_forward(const Conv *c, const float *x, const float *w, const float *bias, const float *res, float *y,
                        int relu, double wkey) {
#ifdef GPULAB_DNNL
  if (!use_dnnl) return 0;
  const long d[13] = {c->n, c->h, c->w, c->ci, c->oh, c->ow, c->co, c->kh, c->kw, c->sh, c->sw, c->pt, c->pl};
  return dnnl_conv_forward(d, x, w, bias, res, y, relu, wkey);
#else
  (void)c, (void)x, (void)w, (void)bias, (void)res, (void)y, (void)relu, (void)wkey;
  return 0;
#endif
}

static int pointwise(const Conv *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 && c->oh == c->h &&
         c->ow == c->w;
}

/* Samples per chunk so that the chunk's im2col matrix fits chunk_floats (at least one sample). */
static long chunk_samples(const Conv *c) {
  long per = c->oh * c->ow * c->kh * c->kw * c->ci;
  long s = chunk_floats / (per > 0 ? per : 1);
  return s < 1 ? 1 : (s > c->n ? c->n : s);
}

/* Rows of the im2col matrix for samples [b0, b1): row (b, oy, ox), columns (i, j, q) = x[b, oy*sh+i-pt, ox*sw+j-pl, q]. */
static void im2col(const float *x, float *cols, const Conv *c, long b0, long b1) {
  const long K = c->kh * c->kw * c->ci;
  float *dst = cols;
  for (long b = b0; b < b1; b++)
    for (long oy = 0; oy < c->oh; oy++)
      for (long ox = 0; ox < c->ow; ox++, dst += K)
        for (long i = 0; i < c->kh; i++) {
          const long iy = oy * c->sh + i - c->pt;
          for (long j = 0; j < c->kw; j++) {
            const long ix = ox * c->sw + j - c->pl;
            float *d = dst + (i * c->kw + j) * c->ci;
            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) memset(d, 0, sizeof(float) * c->ci);
            else memcpy(d, x + ((b * c->h + iy) * c->w + ix) * c->ci, sizeof(float) * c->ci);
          }
        }
}

/* Scatter-adds the im2col-shaped gradient of samples [b0, b1) into dx (which holds their earlier sums). */
static void col2im(const float *cols, float *dx, const Conv *c, long b0, long b1) {
  const long K = c->kh * c->kw * c->ci;
  const float *src = cols;
  for (long b = b0; b < b1; b++)
    for (long oy = 0; oy < c->oh; oy++)
      for (long ox = 0; ox < c->ow; ox++, src += K)
        for (long i = 0; i < c->kh; i++) {
          const long iy = oy * c->sh + i - c->pt;
          if (iy < 0 || iy >= c->h) continue;
          for (long j = 0; j < c->kw; j++) {
            const long ix = ox * c->sw + j - c->pl;
            if (ix < 0 || ix >= c->w) continue;
            float *d = dx + ((b * c->h + iy) * c->w + ix) * c->ci;
            const float *s = src + (i * c->kw + j) * c->ci;
            for (long q = 0; q < c->ci; q++) d[q] += s[q];
          }
        }
}

typedef struct {
  float *x, *w, *y;
  Conv c;
} ConvArgs;

/* Parses (a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array) with the lengths of `kind`. */
static int conv_args(napi_env env, napi_callback_info info, ConvArgs *a, int kind) {
  size_t argc = 4;
  napi_value argv[4];
  size_t l0, l1, l2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) {
    napi_throw_type_error(env, "GPULAB_NATIVE", "expected 4 arguments");
    return 0;
  }
  if (!f32(env, argv[0], &a->x, &l0) || !f32(env, argv[1], &a->w, &l1) || !f32(env, argv[2], &a->y, &l2) ||
      !conv_dims(env, argv[3], &a->c))
    return 0;
  const Conv *c = &a->c;
  const long xs = c->n * c->h * c->w * c->ci, ws = c->kh * c->kw * c->ci * c->co, ys = c->n * c->oh * c->ow * c->co;
  /* kind 0: forward (x, w) -> y; 1: filter gradient (x, dy) -> dw; 2: input gradient (dy, w) -> dx */
  const long sizes[3][3] = {{xs, ws, ys}, {xs, ys, ws}, {ys, ws, xs}};
  return expect_len(env, l0, sizes[kind][0], "input 0") && expect_len(env, l1, sizes[kind][1], "input 1") &&
         expect_len(env, l2, sizes[kind][2], "output");
}

/* conv2dForward(x, w, y, dims): y = conv(x, w). */
static napi_value conv2d_forward(napi_env env, napi_callback_info info) {
  ConvArgs a;
  if (!conv_args(env, info, &a, 0)) return NULL;
  const Conv *c = &a.c;
  const long K = c->kh * c->kw * c->ci, P = c->oh * c->ow;
  if (dnnl_forward(c, a.x, a.w, NULL, NULL, a.y, 0, 0)) return NULL;
  if (pointwise(c)) {
    sgemm(CblasNoTrans, CblasNoTrans, c->n * P, c->co, K, 1.f, a.x, K, a.w, c->co, 0.f, a.y,
                c->co);
    return NULL;
  }
  const long cs = chunk_samples(c);
  float *cols = malloc(sizeof(float) * cs * P * K);
  if (!cols) return fail(env, "conv2dForward: out of memory");
  for (long b0 = 0; b0 < c->n; b0 += cs) {
    const long b1 = b0 + cs < c->n ? b0 + cs : c->n;
    im2col(a.x, cols, c, b0, b1);
    sgemm(CblasNoTrans, CblasNoTrans, (b1 - b0) * P, c->co, K, 1.f, cols, K, a.w, c->co, 0.f,
                a.y + b0 * P * c->co, c->co);
  }
  free(cols);
  return NULL;
}

/* Rows [r0, r1) of y [M, Co] set to bias (+ residual): the sgemm then adds the convolution (beta = 1). */
static void fill_bias(float *y, const float *bias, const float *res, long r0, long r1, long co) {
  for (long r = r0; r < r1; r++) {
    float *yr = y + r * co;
    if (res) {
      const float *rr = res + r * co;
      for (long k = 0; k < co; k++) yr[k] = bias[k] + rr[k];
    } else
      memcpy(yr, bias, sizeof(float) * co);
  }
}

static void relu_rows(float *y, long r0, long r1, long co) {
  for (long i = r0 * co; i < r1 * co; i++) y[i] = y[i] > 0.f ? y[i] : 0.f;
}

/*
 * conv2dBiasAct(x, w, bias, residual | null, y, dims, relu, weightKey?): y = act(conv(x, w) + bias (+ residual)) — an
 * eval-mode convolution with its batch norm folded into w and bias, the residual add and the ReLU in the same pass.
 * weightKey > 0 promises that w is the same every time it is passed with that key (oneDNN keeps its reordered copy).
 */
static napi_value conv2d_bias_act(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  double wkey = 0;
  float *x, *w, *bias, *res = NULL, *y;
  size_t lx, lw, lb, lr = 0, ly;
  Conv cv;
  bool relu;
  napi_valuetype rt;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 || argc > 8)
    return fail(env, "conv2dBiasAct: expected 7 or 8 arguments");
  if (argc == 8 && (napi_get_value_double(env, argv[7], &wkey) != napi_ok || wkey < 0))
    return fail(env, "conv2dBiasAct: the weight key must be a number >= 0");
  if (!f32(env, argv[0], &x, &lx) || !f32(env, argv[1], &w, &lw) || !f32(env, argv[2], &bias, &lb)) return NULL;
  if (napi_typeof(env, argv[3], &rt) != napi_ok) return NULL;
  if (rt != napi_null && !f32(env, argv[3], &res, &lr)) return NULL;
  if (!f32(env, argv[4], &y, &ly) || !conv_dims(env, argv[5], &cv)) return NULL;
  if (napi_get_value_bool(env, argv[6], &relu) != napi_ok) return fail(env, "conv2dBiasAct: relu must be a boolean");
  const Conv *c = &cv;
  const long K = c->kh * c->kw * c->ci, P = c->oh * c->ow, M = c->n * P;
  if (!expect_len(env, lx, c->n * c->h * c->w * c->ci, "input 0") || !expect_len(env, lw, K * c->co, "input 1") ||
      !expect_len(env, lb, c->co, "bias") || (res && !expect_len(env, lr, M * c->co, "residual")) ||
      !expect_len(env, ly, M * c->co, "output"))
    return NULL;
  if (dnnl_forward(c, x, w, bias, res, y, relu, wkey)) return NULL;
  if (pointwise(c)) {
    fill_bias(y, bias, res, 0, M, c->co);
    sgemm(CblasNoTrans, CblasNoTrans, M, c->co, K, 1.f, x, K, w, c->co, 1.f, y, c->co);
    if (relu) relu_rows(y, 0, M, c->co);
    return NULL;
  }
  const long cs = chunk_samples(c);
  float *cols = malloc(sizeof(float) * cs * P * K);
  if (!cols) return fail(env, "conv2dBiasAct: out of memory");
  for (long b0 = 0; b0 < c->n; b0 += cs) {
    const long b1 = b0 + cs < c->n ? b0 + cs : c->n;
    im2col(x, cols, c, b0, b1);
    fill_bias(y, bias, res, b0 * P, b1 * P, c->co);
    sgemm(CblasNoTrans, CblasNoTrans, (b1 - b0) * P, c->co, K, 1.f, cols, K, w, c->co, 1.f,
                y + b0 * P * c->co, c->co);
    if (relu) relu_rows(y, b0 * P, b1 * P, c->co);
  }
  free(cols);
  return NULL;
}

/* conv2dBackpropFilter(x, dy, dw, dims): dw = colsᵀ · dy, summed over chunks. */
static napi_value conv2d_backprop_filter(napi_env env, napi_callback_info info) {
  ConvArgs a;
  if (!conv_args(env, info, &a, 1)) return NULL;
  const Conv *c = &a.c;
  const float *dy = a.w;
  float *dw = a.y;
  const long K = c->kh * c->kw * c->ci, P = c->oh * c->ow;
  if (pointwise(c)) {
    sgemm(CblasTrans, CblasNoTrans, K, c->co, c->n * P, 1.f, a.x, K, dy, c->co, 0.f, dw, c->co);
    return NULL;
  }
  const long cs = chunk_samples(c);
  float *cols = malloc(sizeof(float) * cs * P * K);
  if (!cols) return fail(env, "conv2dBackpropFilter: out of memory");
  for (long b0 = 0; b0 < c->n; b0 += cs) {
    const long b1 = b0 + cs < c->n ? b0 + cs : c->n;
    im2col(a.x, cols, c, b0, b1);
    sgemm(CblasTrans, CblasNoTrans, K, c->co, (b1 - b0) * P, 1.f, cols, K, dy + b0 * P * c->co,
                c->co, b0 == 0 ? 0.f : 1.f, dw, c->co);
  }
  free(cols);
  return NULL;
}

/* conv2dBackpropInput(dy, w, dx, dims): dcols = dy · wᵀ, scattered back (col2im) into dx. */
static napi_value conv2d_backprop_input(napi_env env, napi_callback_info info) {
  ConvArgs a;
  if (!conv_args(env, info, &a, 2)) return NULL;
  const Conv *c = &a.c;
  const float *dy = a.x;
  float *dx = a.y;
  const long K = c->kh * c->kw * c->ci, P = c->oh * c->ow;
  if (pointwise(c)) {
    sgemm(CblasNoTrans, CblasTrans, c->n * P, K, c->co, 1.f, dy, c->co, a.w, c->co, 0.f, dx, K);
    return NULL;
  }
  const long cs = chunk_samples(c);
  float *cols = malloc(sizeof(float) * cs * P * K);
  if (!cols) return fail(env, "conv2dBackpropInput: out of memory");
  memset(dx, 0, sizeof(float) * c->n * c->h * c->w * c->ci);
  for (long b0 = 0; b0 < c->n; b0 += cs) {
    const long b1 = b0 + cs < c->n ? b0 + cs : c->n;
    sgemm(CblasNoTrans, CblasTrans, (b1 - b0) * P, K, c->co, 1.f, dy + b0 * P * c->co, c->co, a.w,
                c->co, 0.f, cols, K);
    col2im(cols, dx, c, b0, b1);
  }
  free(cols);
  return NULL;
}

/*
 * batchNormTrain(x, gamma, beta, y, mean, invStd, variance, relu): per channel of x [M, C], the batch mean and the
 * biased variance; y = (x - mean) * invStd * gamma + beta, then max(y, 0) when relu is true. Sums in double.
 */
static napi_value batch_norm_train(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  float *x, *g, *bt, *y, *mean, *inv, *var;
  size_t lx, lg, lb, ly, lm, li, lv;
  bool relu;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 8)
    return fail(env, "batchNormTrain: expected 8 arguments");
  if (!f32(env, argv[0], &x, &lx) || !f32(env, argv[1], &g, &lg) || !f32(env, argv[2], &bt, &lb) ||
      !f32(env, argv[3], &y, &ly) || !f32(env, argv[4], &mean, &lm) || !f32(env, argv[5], &inv, &li) ||
      !f32(env, argv[6], &var, &lv))
    return NULL;
  if (napi_get_value_bool(env, argv[7], &relu) != napi_ok) return fail(env, "batchNormTrain: relu must be a boolean");
  const long C = (long)lg, M = C > 0 ? (long)lx / C : 0;
  if (C == 0 || M < 2 || M * C != (long)lx) return fail(env, "batchNormTrain: x is not [M, C] with M >= 2");
  if (!expect_len(env, lb, C, "beta") || !expect_len(env, ly, M * C, "y") || !expect_len(env, lm, C, "mean") ||
      !expect_len(env, li, C, "invStd") || !expect_len(env, lv, C, "variance"))
    return NULL;
  double *acc = calloc(C, sizeof(double));
  float *row = malloc(sizeof(float) * C);
  if (!acc || !row) return free(acc), free(row), fail(env, "batchNormTrain: out of memory");
  /* Sums in float per block of rows (vectorised), then added into double accumulators. */
  const long BLOCK = 64;
  for (long r0 = 0; r0 < M; r0 += BLOCK) {
    const long r1 = r0 + BLOCK < M ? r0 + BLOCK : M;
    memset(row, 0, sizeof(float) * C);
    for (long r = r0; r < r1; r++) {
      const float *xr = x + r * C;
      for (long k = 0; k < C; k++) row[k] += xr[k];
    }
    for (long k = 0; k < C; k++) acc[k] += row[k];
  }
  for (long k = 0; k < C; k++) mean[k] = (float)(acc[k] / M), acc[k] = 0;
  for (long r0 = 0; r0 < M; r0 += BLOCK) {
    const long r1 = r0 + BLOCK < M ? r0 + BLOCK : M;
    memset(row, 0, sizeof(float) * C);
    for (long r = r0; r < r1; r++) {
      const float *xr = x + r * C;
      for (long k = 0; k < C; k++) {
        const float d = xr[k] - mean[k];
        row[k] += d * d;
      }
    }
    for (long k = 0; k < C; k++) acc[k] += row[k];
  }
  float *scale = row; /* reuse: gamma * invStd */
  float *shift = malloc(sizeof(float) * C);
  if (!shift) return free(acc), free(row), fail(env, "batchNormTrain: out of memory");
  for (long k = 0; k < C; k++) {
    var[k] = (float)(acc[k] / M);
    inv[k] = (float)(1.0 / sqrt(acc[k] / M + 1e-5));
    scale[k] = g[k] * inv[k];
    shift[k] = bt[k] - mean[k] * scale[k];
  }
  for (long r = 0; r < M; r++) {
    const float *xr = x + r * C;
    float *yr = y + r * C;
    if (relu)
      for (long k = 0; k < C; k++) {
        const float v = xr[k] * scale[k] + shift[k];
        yr[k] = v > 0.f ? v : 0.f;
      }
    else
      for (long k = 0; k < C; k++) yr[k] = xr[k] * scale[k] + shift[k];
  }
  free(acc), free(row), free(shift);
  return NULL;
}

/*
 * batchNormTrainGrad(dy, x, y, mean, invStd, gamma, dx, dgamma, dbeta, relu): the exact gradient of batchNormTrain
 * (batch statistics differentiated). With relu, dy is first masked where the output y is 0.
 *   dbeta = Σ g, dgamma = Σ g·x̂, dx = gamma·invStd·(g − dbeta/M − x̂·dgamma/M), g = relu ? dy·[y > 0] : dy.
 */
static napi_value batch_norm_train_grad(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  float *dy, *x, *y, *mean, *inv, *g, *dx, *dg, *db;
  size_t l[9];
  bool relu;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 10)
    return fail(env, "batchNormTrainGrad: expected 10 arguments");
  float **ptrs[9] = {&dy, &x, &y, &mean, &inv, &g, &dx, &dg, &db};
  for (int i = 0; i < 9; i++)
    if (!f32(env, argv[i], ptrs[i], &l[i])) return NULL;
  if (napi_get_value_bool(env, argv[9], &relu) != napi_ok)
    return fail(env, "batchNormTrainGrad: relu must be a boolean");
  const long C = (long)l[5], M = C > 0 ? (long)l[0] / C : 0;
  if (C == 0 || M < 2 || M * C != (long)l[0] || (long)l[1] != M * C || (long)l[2] != M * C || (long)l[3] != C ||
      (long)l[4] != C || (long)l[6] != M * C || (long)l[7] != C || (long)l[8] != C)
    return fail(env, "batchNormTrainGrad: shapes do not match");
  double *sb = calloc(C, sizeof(double)), *sg = calloc(C, sizeof(double));
  float *rb = malloc(sizeof(float) * C), *rg = malloc(sizeof(float) * C);
  if (!sb || !sg || !rb || !rg) return free(sb), free(sg), free(rb), free(rg), fail(env, "out of memory");
  const long BLOCK = 64;
  for (long r0 = 0; r0 < M; r0 += BLOCK) {
    const long r1 = r0 + BLOCK < M ? r0 + BLOCK : M;
    memset(rb, 0, sizeof(float) * C);
    memset(rg, 0, sizeof(float) * C);
    for (long r = r0; r < r1; r++) {
      const float *dyr = dy + r * C, *xr = x + r * C, *yr = y + r * C;
      if (relu)
        for (long k = 0; k < C; k++) {
          const float gk = yr[k] > 0.f ? dyr[k] : 0.f;
          rb[k] += gk;
          rg[k] += gk * (xr[k] - mean[k]);
        }
      else
        for (long k = 0; k < C; k++) {
          rb[k] += dyr[k];
          rg[k] += dyr[k] * (xr[k] - mean[k]);
        }
    }
    for (long k = 0; k < C; k++) sb[k] += rb[k], sg[k] += rg[k];
  }
  /* dx = a·g + b·x + c per channel: a = gamma·inv, b = −gamma·inv·inv²·Σg(x−mean)/M, c = −a·dbeta/M − b·mean */
  float *ca = rb, *cb = rg, *cc = malloc(sizeof(float) * C);
  if (!cc) return free(sb), free(sg), free(rb), free(rg), fail(env, "out of memory");
  for (long k = 0; k < C; k++) {
    db[k] = (float)sb[k];
    dg[k] = (float)(sg[k] * inv[k]);
    const double a = (double)g[k] * inv[k];
    const double b = -a * inv[k] * inv[k] * sg[k] / M;
    ca[k] = (float)a;
    cb[k] = (float)b;
    cc[k] = (float)(-a * sb[k] / M - b * mean[k]);
  }
  for (long r = 0; r < M; r++) {
    const float *dyr = dy + r * C, *xr = x + r * C, *yr = y + r * C;
    float *dxr = dx + r * C;
    if (relu)
      for (long k = 0; k < C; k++) dxr[k] = ca[k] * (yr[k] > 0.f ? dyr[k] : 0.f) + cb[k] * xr[k] + cc[k];
    else
      for (long k = 0; k < C; k++) dxr[k] = ca[k] * dyr[k] + cb[k] * xr[k] + cc[k];
  }
  free(sb), free(sg), free(rb), free(rg), free(cc);
  return NULL;
}

/*
 * maxPoolGrad(dy, x, dx, dims): the gradient of a max pool — each output's gradient goes to the first maximum of its
 * window (row-major, padding excluded), as TF.js's reference kernel and PyTorch do. dims as for conv2d (co = ci).
 */
static napi_value max_pool_grad(napi_env env, napi_callback_info info) {
  ConvArgs a;
  size_t argc = 4;
  napi_value argv[4];
  size_t ldy, lx, ldx;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4)
    return fail(env, "maxPoolGrad: expected 4 arguments");
  float *dy, *x, *dx;
  if (!f32(env, argv[0], &dy, &ldy) || !f32(env, argv[1], &x, &lx) || !f32(env, argv[2], &dx, &ldx) ||
      !conv_dims(env, argv[3], &a.c))
    return NULL;
  const Conv *c = &a.c;
  const long C = c->ci;
  if (c->co != C) return fail(env, "maxPoolGrad: output channels must equal input channels");
  if (!expect_len(env, ldy, c->n * c->oh * c->ow * C, "dy") || !expect_len(env, lx, c->n * c->h * c->w * C, "x") ||
      !expect_len(env, ldx, c->n * c->h * c->w * C, "dx"))
    return NULL;
  float *best = malloc(sizeof(float) * C);
  long *arg = malloc(sizeof(long) * C);
  if (!best || !arg) return free(best), free(arg), fail(env, "maxPoolGrad: out of memory");
  memset(dx, 0, sizeof(float) * c->n * c->h * c->w * C);
  for (long b = 0; b < c->n; b++)
    for (long oy = 0; oy < c->oh; oy++)
      for (long ox = 0; ox < c->ow; ox++) {
        int first = 1;
        for (long i = 0; i < c->kh; i++) {
          const long iy = oy * c->sh + i - c->pt;
          if (iy < 0 || iy >= c->h) continue;
          for (long j = 0; j < c->kw; j++) {
            const long ix = ox * c->sw + j - c->pl;
            if (ix < 0 || ix >= c->w) continue;
            const long base = ((b * c->h + iy) * c->w + ix) * C;
            const float *xp = x + base;
            if (first) {
              for (long q = 0; q < C; q++) best[q] = xp[q], arg[q] = base + q;
              first = 0;
            } else
              for (long q = 0; q < C; q++)
                if (xp[q] > best[q]) best[q] = xp[q], arg[q] = base + q;
          }
        }
        if (first) continue; /* a window entirely in the padding has no input */
        const float *g = dy + ((b * c->oh + oy) * c->ow + ox) * C;
        for (long q = 0; q < C; q++) dx[arg[q]] += g[q];
      }
  free(best), free(arg);
  return NULL;
}

/*
 * sgdStep(p, buf, g, pOut, bufOut, params): one torch.optim.SGD step (dampening 0) in one pass, for an existing
 * momentum buffer. params = [lr, momentum, weightDecay, nesterov (0/1)].
 *   g' = g + wd·p; buf' = μ·buf + g'; p' = p − lr·(nesterov ? g' + μ·buf' : buf')
 */
static napi_value sgd_step(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  float *p, *buf, *g, *po, *bo, *prm;
  size_t l[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6)
    return fail(env, "sgdStep: expected 6 arguments");
  float **ptrs[6] = {&p, &buf, &g, &po, &bo, &prm};
  for (int i = 0; i < 6; i++)
    if (!f32(env, argv[i], ptrs[i], &l[i])) return NULL;
  if (l[5] != 4) return fail(env, "sgdStep: params must be [lr, momentum, weightDecay, nesterov]");
  for (int i = 1; i < 5; i++)
    if (l[i] != l[0]) return fail(env, "sgdStep: parameter, buffer, gradient and outputs differ in size");
  const float lr = prm[0], mu = prm[1], wd = prm[2];
  const int nesterov = prm[3] != 0.f;
  const long n = (long)l[0];
  for (long i = 0; i < n; i++) {
    const float gi = g[i] + wd * p[i];
    const float bi = mu * buf[i] + gi;
    bo[i] = bi;
    po[i] = p[i] - lr * (nesterov ? gi + mu * bi : bi);
  }
  return NULL;
}

/*
 * setThreads(n, smallMflops?): the BLAS thread count for large products (n > 0; 0 = leave as configured) and,
 * optionally, the size in MFLOP below which a product runs on one thread. Returns the thread count for large products.
 */
static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t n = 0;
  double small = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1 && napi_get_value_int32(env, argv[0], &n) != napi_ok) return fail(env, "setThreads: expected a number");
  if (argc >= 2 && (napi_get_value_double(env, argv[1], &small) != napi_ok || small < 0))
    return fail(env, "setThreads: smallMflops must be a number >= 0");
  if (max_threads == 0) max_threads = cur_threads = openblas_get_num_threads();
  if (n > 0) max_threads = n;
  if (small >= 0) small_flops = small * 1e6;
  napi_create_int32(env, max_threads, &out);
  return out;
}

/* setChunkFloats(n): the im2col buffer bound in floats (n > 0); returns the previous bound. Tests force chunking. */
static napi_value set_chunk_floats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int64(env, argv[0], &n) != napi_ok || n <= 0)
    return fail(env, "setChunkFloats: expected a positive number");
  napi_create_int64(env, chunk_floats, &out);
  chunk_floats = (long)n;
  return out;
}

/* useOneDnn(on): route convolution forward to oneDNN (default) or to im2col + BLAS; returns the previous setting. */
static napi_value use_onednn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  bool on;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_bool(env, argv[0], &on) != napi_ok)
    return fail(env, "useOneDnn: expected a boolean");
  napi_get_boolean(env, use_dnnl != 0, &out);
  use_dnnl = on;
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv2dForward", NULL, conv2d_forward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv2dBackpropFilter", NULL, conv2d_backprop_filter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv2dBackpropInput", NULL, conv2d_backprop_input, NULL, NULL, NULL, napi_enumerable, NULL},
      {"batchNormTrain", NULL, batch_norm_train, NULL, NULL, NULL, napi_enumerable, NULL},
      {"batchNormTrainGrad", NULL, batch_norm_train_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv2dBiasAct", NULL, conv2d_bias_act, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxPoolGrad", NULL, max_pool_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sgdStep", NULL, sgd_step, NULL, NULL, NULL, napi_enumerable, NULL},
      {"useOneDnn", NULL, use_onednn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChunkFloats", NULL, set_chunk_floats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value flag;
#ifdef GPULAB_DNNL
  napi_get_boolean(env, true, &flag);
#else
  napi_get_boolean(env, false, &flag);
#endif
  napi_set_named_property(env, exports, "onednn", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
