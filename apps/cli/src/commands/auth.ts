/** login, logout, whoami: the server URL and a personal API token in the config file (mode 0600). */
import { hostname } from 'node:os';
import { GpulabClient } from '@gpulab/sdk';
import { type Command, flag, num, str, usageError } from '../command';
import { configPath, DEFAULT_URL, readConfig, writeConfig } from '../config';
import type { Ctx } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { hours } from '../format';
import { ask, askHidden, readStdin } from '../prompt';

/** fetch that keeps the session cookie of a password sign-in (Node's fetch has no cookie jar). */
function cookieFetch(): typeof fetch {
  const jar = new Map<string, string>();
  return async (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(input, { ...init, headers });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0] ?? '';
      const i = pair.indexOf('=');
      if (i > 0) jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return res;
  };
}

async function tokenFromPassword(ctx: Ctx, url: string, email: string, password: string, days: number | null) {
  const client = new GpulabClient({ baseUrl: url, fetch: cookieFetch(), retries: 0 });
  await client.auth.login(email, password);
  const t = await client.auth.createToken(`gpulab CLI on ${hostname()}`.slice(0, 100), days);
  await client.auth.logout().catch(() => undefined);
  ctx.note(`created API token "${t.name}"${t.expiresAt ? `, expires ${t.expiresAt.slice(0, 10)}` : ''}`);
  return { token: t.token, tokenId: t.id };
}

export const login: Command = {
  name: 'login',
  summary: 'sign in to a gpulab server and save the URL and an API token',
  usage: '[--url URL] [--token TOKEN | --token-stdin | --email EMAIL [--password-stdin]]',
  details:
    'With an email, signs in with your password and creates a personal API token for this machine.\n' +
    'The config is $XDG_CONFIG_HOME/gpulab/config.json (default ~/.config/gpulab), readable only by you.\n' +
    'GPULAB_URL and GPULAB_TOKEN override it.',
  options: {
    url: { type: 'string', arg: 'URL', help: `API server (default: GPULAB_URL, the saved one, or ${DEFAULT_URL})` },
    token: {
      type: 'string',
      arg: 'TOKEN',
      help: 'an API token (gpl_…); prefer --token-stdin, argv is visible to others',
    },
    'token-stdin': { type: 'boolean', help: 'read the API token from stdin' },
    email: { type: 'string', arg: 'EMAIL', help: 'sign in with email and password (prompted, hidden)' },
    'password-stdin': { type: 'boolean', help: 'read the password from stdin (with --email)' },
    'expires-days': { type: 'string', arg: 'N', help: 'lifetime of the token created from a password (default 90)' },
  },
  positionals: { min: 0, max: 0 },
  examples: [
    'gpulab login                                   # prompts for email and password',
    'gpulab login --url https://gpulab.uni.edu --email ada@uni.edu',
    'echo "$TOKEN" | gpulab login --url http://127.0.0.1:8080 --token-stdin',
  ],
  async run(ctx, args) {
    const saved = readConfig(ctx.env);
    const url = (str(args, 'url') ?? ctx.env.GPULAB_URL ?? saved.url ?? DEFAULT_URL).replace(/\/+$/, '');
    if (!/^https?:\/\/[^\s/]+/.test(url)) throw usageError('login', `--url must be an http(s) URL, got ${url}`);
    let token = str(args, 'token');
    if (flag(args, 'token-stdin')) token = await readStdin(ctx.io);
    let email = str(args, 'email');
    let tokenId: string | undefined;
    if (!token && !email) {
      if (!ctx.io.stdin.isTTY)
        throw usageError(
          'login',
          'give --token-stdin, --token, or --email with --password-stdin (stdin is not a terminal)',
        );
      const answer = await ask(ctx.io, `Email for ${url} (or paste an API token): `);
      if (/^gpl_/.test(answer)) token = answer;
      else email = answer;
    }
    if (!token) {
      if (!email) throw usageError('login', 'an email or a token is needed');
      const password = flag(args, 'password-stdin')
        ? await readStdin(ctx.io)
        : await askHidden(ctx.io, `Password for ${email}: `);
      const days =
        str(args, 'expires-days') === 'never'
          ? null
          : (num('login', args, 'expires-days', { integer: true, min: 1, max: 365 }) ?? 90);
      ({ token, tokenId } = await tokenFromPassword(ctx, url, email, password, days));
    }
    token = token.trim();
    const me = await new GpulabClient({ baseUrl: url, token }).me().catch((e) => {
      if ((e as { status?: number }).status === 401)
        throw new CliError(`${url} refused the token`, EXIT.API, 'check it, or create a new one in the dashboard');
      throw e;
    });
    const file = writeConfig(ctx.env, { url, token, email: me.email, ...(tokenId ? { tokenId } : {}) });
    if (ctx.json) ctx.outJson({ url, user: me, config: file });
    else {
      ctx.out(`Logged in to ${url} as ${me.email} (${me.role}).`);
      ctx.out(`Saved in ${file} (readable only by you).`);
      if (ctx.env.GPULAB_TOKEN) ctx.note('note: GPULAB_TOKEN is set and overrides the saved token');
    }
    return EXIT.OK;
  },
};

export const logout: Command = {
  name: 'logout',
  summary: 'forget the saved token (and revoke it if gpulab login created it)',
  usage: '',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['gpulab logout'],
  async run(ctx) {
    const c = readConfig(ctx.env);
    let revoked = false;
    if (c.token && c.tokenId && c.url) {
      const client = new GpulabClient({ baseUrl: c.url, token: c.token, retries: 0 });
      revoked = await client
        .request('DELETE', `/v1/me/tokens/${encodeURIComponent(c.tokenId)}`)
        .then(() => true)
        .catch(() => false);
    }
    const had = Boolean(c.token);
    writeConfig(ctx.env, { ...(c.url ? { url: c.url } : {}) });
    if (ctx.json) ctx.outJson({ loggedOut: had, revoked, config: configPath(ctx.env) });
    else ctx.out(had ? `Logged out${revoked ? ' (token revoked)' : ''}.` : 'Not logged in.');
    return EXIT.OK;
  },
};

export const whoami: Command = {
  name: 'whoami',
  summary: 'who you are on which server, and your GPU-hours',
  usage: '',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['gpulab whoami', 'gpulab whoami --json | jq .email'],
  async run(ctx) {
    const me = await ctx.client().me();
    const s = ctx.settings;
    if (ctx.json) {
      ctx.outJson({ url: s.url, ...me });
      return EXIT.OK;
    }
    ctx.out(`${me.email} (${me.name}, ${me.role}) on ${s.url}`);
    ctx.out(`token from ${s.tokenFrom === 'env' ? 'GPULAB_TOKEN' : configPath(ctx.env)}`);
    for (const q of me.quotas)
      ctx.out(`  ${q.group.name}: ${hours(q.freeHours)} of ${hours(q.grantedHours)} GPU-h free`);
    return EXIT.OK;
  },
};
