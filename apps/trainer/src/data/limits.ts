/** Defaults for what the data pipeline accepts and how much it holds in memory. */
export const DATA_DEFAULTS = {
  /** Objects fetched and validated at once while indexing. */
  concurrency: 8,
  /** Bytes of encoded images kept in memory after indexing (see ImageCache). */
  cacheBytes: 512 * 1024 * 1024,
  /** Larger files are skipped without being downloaded. */
  maxFileBytes: 50 * 1024 * 1024,
  /** Larger images (width × height) are skipped before any pixel is decoded: decompression bombs. */
  maxPixels: 40_000_000,
  /** Decode worker threads used by `batches`; 0 decodes on the main thread. */
  workers: 2,
} as const;
