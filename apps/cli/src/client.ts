/** A small REST client for the gpulab API (the typed SDK of the REST API issue will replace it). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { code?: string; detail?: string; field?: string },
  ) {
    super(
      `${problem.code ?? status}: ${problem.detail ?? 'request failed'}${problem.field ? ` (field ${problem.field})` : ''}`,
    );
  }
}

export class GpulabClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new ApiError(res.status, json ?? {});
    return json as T;
  }
}
