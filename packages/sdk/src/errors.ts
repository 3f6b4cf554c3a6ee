/** An API error: the problem+json body's stable `code`, the offending `field` when one is to blame, and the rest. */
export class GpulabApiError extends Error {
  override readonly name = 'GpulabApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }

  /** Seconds to wait before retrying (429, 503), when the server said. */
  get retryAfterSeconds(): number | null {
    const v = this.body.retryAfterSeconds;
    return typeof v === 'number' ? v : null;
  }
}

export async function toApiError(res: Response): Promise<GpulabApiError> {
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { detail: text.slice(0, 500) };
  }
  const retry = res.headers.get('retry-after');
  if (retry && body.retryAfterSeconds === undefined) body.retryAfterSeconds = Number(retry);
  const code = typeof body.code === 'string' ? body.code : `HTTP_${res.status}`;
  const detail = typeof body.detail === 'string' ? body.detail : res.statusText;
  const field = typeof body.field === 'string' ? body.field : null;
  return new GpulabApiError(res.status, code, detail, field, body);
}
